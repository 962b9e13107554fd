"""``orchestrator dashboard`` (also ``scripts/view_logs_dashboard.py``): the live tail.

Resolves the database the way every reader does (``DATABASE_URL``, else Supabase
REST, else the embedded default, which it migrates; a configured database without the
hub's schema is refused in one line, as by every command), then runs the Textual app
until ``q``, Ctrl-C, SIGTERM or SIGHUP. A database that is down at start is not an
error here: the app says so and keeps retrying. Textual is imported only when the
dashboard runs: it is 0.4 s of every other command's start-up otherwise.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestrator.cli.argtypes import bounded, checked
from orchestrator.cli.schema import open_checked_executor
from orchestrator.config import get_settings
from orchestrator.dashboard.source import QueryTailSource
from orchestrator.dashboard.state import TailFilter, parse_level
from orchestrator.query.model import task_uuid

if TYPE_CHECKING:
    from orchestrator.dashboard.app import DashboardOptions


def register(commands: Any) -> None:
    """Adds the ``dashboard`` subcommand."""
    parser = commands.add_parser(
        "dashboard",
        help="live terminal dashboard of the logs (q quits)",
        description="A live tail of the log store with rates, error rate, active workers "
        "and errors per minute. Keys: Enter a row's detail (then t its task's timeline, "
        "w its worker's), Up/Down select, space pause/resume, / search, l level, "
        "L exact level, s source type, w worker, t task, c clear filters, j jobs, "
        "G or End back to live, q quit.",
    )
    parser.add_argument(
        "--refresh",
        type=bounded(float, 0.1, 3600, "a number of seconds from 0.1 to 3600"),
        default=2.0,
        metavar="SECONDS",
        help="seconds between refreshes (default 2)",
    )
    parser.add_argument("--source-type", help="only this source type (e.g. worker)")
    parser.add_argument("--worker", help="only this worker id")
    parser.add_argument("--task", type=checked(task_uuid), help="only this task id (a UUID)")
    parser.add_argument(
        "--level",
        type=checked(parse_level),
        default=None,
        help="minimum level: DEBUG, INFO, WARNING, ERROR or CRITICAL",
    )
    parser.add_argument(
        "--exact", action="store_true", help="--level means that level only, not the ones above"
    )
    parser.add_argument("--search", help="only messages containing this text (any case)")
    parser.add_argument(
        "--limit",
        type=bounded(int, 1, 10_000, "a whole number from 1 to 10000"),
        default=200,
        metavar="ROWS",
        help="rows shown at start, the newest ones (default 200)",
    )
    parser.add_argument(
        "--scrollback",
        type=bounded(int, 100, 1_000_000, "a whole number from 100 to 1000000"),
        default=5000,
        metavar="LINES",
        help="lines kept for scrolling back (default 5000)",
    )
    parser.add_argument(
        "--lag",
        type=bounded(float, 0, 3600, "a number of seconds from 0 to 3600"),
        default=10.0,
        metavar="SECONDS",
        help="each refresh re-reads this far back from the newest row shown, so a row "
        "that reaches the database up to this late (log handlers send in batches) is "
        "still shown, once (default 10)",
    )
    parser.add_argument(
        "--delay",
        type=bounded(float, 0, 3600, "a number of seconds from 0 to 3600"),
        default=0.0,
        metavar="SECONDS",
        help="hold the tail this far behind the database clock, to see late rows in "
        "time order instead of as they arrive (default 0)",
    )
    parser.set_defaults(run=run)


def options_from(args: argparse.Namespace) -> DashboardOptions:
    """The app's options from parsed flags."""
    from orchestrator.dashboard.app import DashboardOptions

    return DashboardOptions(
        filter=TailFilter(
            min_level=args.level,
            source_type=args.source_type,
            worker_id=args.worker,
            search=args.search,
            task_id=args.task,
            exact_level=args.exact,
        ),
        refresh=args.refresh,
        initial_rows=args.limit,
        scrollback=args.scrollback,
        delay=args.delay,
        lag=args.lag,
    )


def run(args: argparse.Namespace) -> int:
    """Runs the dashboard until the user quits; 0 on a clean exit."""
    from orchestrator.dashboard.app import DashboardApp

    options = options_from(args)
    with open_checked_executor(get_settings(), wait=True) as executor:
        app = DashboardApp(QueryTailSource(executor), options)
        app.run()
    return app.return_code or 0
