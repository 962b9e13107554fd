"""``orchestrator dashboard`` (also ``scripts/view_logs_dashboard.py``): the live tail.

Resolves the database the way every reader does (``open_executor``: ``DATABASE_URL``,
else Supabase REST, else the embedded default), then runs the Textual app until ``q``
or Ctrl-C. A database that is down at start is not an error here: the app says so and
keeps retrying. Textual is imported only when the dashboard runs: it is 0.4 s of
every other command's start-up otherwise.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestrator.config import get_settings
from orchestrator.dashboard.source import QueryTailSource
from orchestrator.dashboard.state import TailFilter, parse_level
from orchestrator.db.executor import open_executor
from orchestrator.errors import HubError

if TYPE_CHECKING:
    from orchestrator.dashboard.app import DashboardOptions


def _bounded(kind: Callable[[str], float], low: float, high: float, accepted: str) -> Any:
    """An argparse type: a number of ``kind`` in [low, high], else one line saying so."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # also false for NaN
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value

    return parse


def _level(text: str) -> str | None:
    try:
        return parse_level(text)
    except HubError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(commands: Any) -> None:
    """Adds the ``dashboard`` subcommand."""
    parser = commands.add_parser(
        "dashboard",
        help="live terminal dashboard of the logs (q quits)",
        description="A live tail of the log store with rates, error rate, active workers "
        "and errors per minute. Keys: space pause/resume, / search, l minimum level, "
        "s source type, w worker, c clear filters, G or End back to live, q quit.",
    )
    parser.add_argument(
        "--refresh",
        type=_bounded(float, 0.1, 3600, "a number of seconds from 0.1 to 3600"),
        default=5.0,
        metavar="SECONDS",
        help="seconds between refreshes (default 5)",
    )
    parser.add_argument("--source-type", help="only this source type (e.g. worker)")
    parser.add_argument("--worker", help="only this worker id")
    parser.add_argument(
        "--level",
        type=_level,
        default=None,
        help="minimum level: DEBUG, INFO, WARNING, ERROR or CRITICAL",
    )
    parser.add_argument("--search", help="only messages containing this text (any case)")
    parser.add_argument(
        "--limit",
        type=_bounded(int, 1, 10_000, "a whole number from 1 to 10000"),
        default=200,
        metavar="ROWS",
        help="rows shown at start, the newest ones (default 200)",
    )
    parser.add_argument(
        "--scrollback",
        type=_bounded(int, 100, 1_000_000, "a whole number from 100 to 1000000"),
        default=5000,
        metavar="LINES",
        help="lines kept for scrolling back (default 5000)",
    )
    parser.add_argument(
        "--delay",
        type=_bounded(float, 0, 3600, "a number of seconds from 0 to 3600"),
        default=5.0,
        metavar="SECONDS",
        help="hold the tail this far behind the database clock, so rows that log "
        "handlers send in batches still arrive in order (default 5; 0 = no delay)",
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
        ),
        refresh=args.refresh,
        initial_rows=args.limit,
        scrollback=args.scrollback,
        delay=args.delay,
    )


def run(args: argparse.Namespace) -> int:
    """Runs the dashboard until the user quits; 0 on a clean exit."""
    from orchestrator.dashboard.app import DashboardApp

    options = options_from(args)
    with open_executor(get_settings()) as executor:
        app = DashboardApp(QueryTailSource(executor), options)
        app.run()
    return app.return_code or 0
