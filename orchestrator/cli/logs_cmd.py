"""``orchestrator logs``: read the log store as journalctl and logcli users expect.

Every seed flag (--worker, --task, --source-type, --source-id, --level, --cycle,
--search, --hours, --limit, --worker-timeline, --task-timeline, --errors-summary,
--stats, --export, --format) plus --since/--until, --min-level, -f/--follow, --color,
--order and --after. Input is checked before any database is touched; every result
is computed and paged by the database (``orchestrator.query``), and a cut result says
so on stderr with the --after that continues it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from orchestrator.cli import logs_render, logs_seed_keys
from orchestrator.cli.argtypes import bounded
from orchestrator.cli.logs_follow import follow
from orchestrator.cli.logs_render import RowWriter
from orchestrator.cli.logs_summary import write_summary
from orchestrator.cli.schema import open_checked_executor
from orchestrator.config import get_settings
from orchestrator.db.calls import Call, CallExecutor
from orchestrator.errors import QueryInputError, UsageError
from orchestrator.logs import calls as log_calls
from orchestrator.query import calls
from orchestrator.query.model import Cursor, LogFilter, LogPage, split_levels, task_uuid
from orchestrator.query.reading import iter_pages
from orchestrator.query.timespec import parse_time

EXAMPLES = """examples:
  orchestrator logs                                  last 24 h, newest first, 100 rows
  orchestrator logs --worker gpu-1 --min-level warning --since 2h
  orchestrator logs --task-timeline 0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a
  orchestrator logs --search "out of memory" --level error,critical
  orchestrator logs --errors-summary --since 6h
  orchestrator logs -f --source-type worker
  orchestrator logs --export day.jsonl --since 1d     format from the extension
  orchestrator logs --errors-summary --since 6h --format csv
"""
_ANY_NUMBER = bounded(float, float("-inf"), float("inf"), "a number")


@dataclass(frozen=True)
class Request:
    """A checked ``orchestrator logs`` invocation, ready to run."""

    action: str  # list, task_timeline, worker_timeline, errors_summary, stats
    filter: LogFilter
    since: datetime
    until: datetime | None
    limit: int | None
    newest_first: bool
    fmt: str
    color: str
    export: Path | None = None
    after_id: str | None = None
    target: str | None = None  # the task or worker of a timeline
    follow: bool = False
    interval: float = 2.0


def register(commands: Any) -> None:
    """Adds the ``logs`` subcommand."""
    p = commands.add_parser(
        "logs",
        help="read logs: filters, timelines, errors summary, statistics, export, follow",
        description="Reads system_logs through the hub's SQL functions (psycopg, or "
        "Supabase REST when only SUPABASE_URL is set). Times are UTC.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group("filters (all combine)")
    what.add_argument("--worker", metavar="ID", help="rows of this worker_id")
    what.add_argument("--task", metavar="UUID", help="rows of this task_id")
    what.add_argument("--source-type", help="e.g. worker, orchestrator_gpu")
    what.add_argument("--source-id", help="e.g. gpu-1, orch-1")
    what.add_argument(
        "--level", action="append", default=[], metavar="LEVEL[,LEVEL]",
        help="exactly these levels; repeat or comma-separate",
    )  # fmt: skip
    what.add_argument("--min-level", metavar="LEVEL", help="this severity and above")
    what.add_argument(
        "--cycle",
        type=bounded(int, -(2**31), 2**31 - 1, "a cycle number (a whole number)"),
        metavar="N",
        help="orchestrator cycle number",
    )
    what.add_argument(
        "--search", metavar="TEXT", help="literal, case-insensitive text in the message"
    )
    when = p.add_argument_group("time window (UTC)")
    when.add_argument("--hours", type=_ANY_NUMBER, default=24.0, help="window length (default 24)")
    when.add_argument("--since", metavar="TIME", help="15m, 2h, 3d, 1w ago, or ISO 8601")
    when.add_argument("--until", metavar="TIME", help="end of the window (default: now)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--worker-timeline", metavar="ID", help="one worker's rows, oldest first")
    mode.add_argument("--task-timeline", metavar="UUID", help="a task's whole life, oldest first")
    mode.add_argument(
        "--errors-summary",
        action="store_true",
        help="ERROR/CRITICAL counted by source, worker, message",
    )
    mode.add_argument("--stats", action="store_true", help="counts by level, source and worker")
    out = p.add_argument_group("output")
    out.add_argument(
        "--limit",
        type=bounded(int, 1, 10**9, "a positive whole number of rows"),
        help="rows per result (default 100, timelines 1000; export: all; "
        "--errors-summary: entries per list, 1 to 1000, default 20)",
    )
    out.add_argument("--after", metavar="ID", help="continue after this log row (keyset)")
    out.add_argument(
        "--order",
        choices=("newest", "oldest"),
        help="row order (default: newest first on screen, oldest first for timelines and --export)",
    )
    out.add_argument(
        "--format",
        choices=logs_render.FORMATS,
        dest="fmt",
        help="table (default on screen), json, jsonl or csv; --export FILE without it "
        "takes the format from FILE's extension (.json, .jsonl, .csv; other: csv)",
    )
    out.add_argument(
        "--export",
        metavar="FILE",
        type=Path,
        help="write every matching row (or the summary) to FILE, streaming",
    )
    out.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    out.add_argument("-f", "--follow", action="store_true", help="keep printing new rows")
    out.add_argument(
        "--interval", type=_ANY_NUMBER, default=2.0, help="seconds between --follow polls"
    )
    p.set_defaults(run=run)


def build_request(args: argparse.Namespace, *, now: datetime | None = None) -> Request:
    """Checks every argument (QueryInputError with one line) before any database work."""
    moment = now or datetime.now(UTC)
    if args.hours <= 0:
        raise QueryInputError(f"--hours must be above 0, got {args.hours:g}")
    since = (
        parse_time(args.since, now=moment, what="--since")
        if args.since
        else moment - timedelta(hours=args.hours)
    )
    until = parse_time(args.until, now=moment, what="--until") if args.until else None
    action = "list"
    target: str | None = None
    if args.task_timeline:
        action, target = "task_timeline", task_uuid(args.task_timeline)
    elif args.worker_timeline:
        action, target = "worker_timeline", args.worker_timeline
    elif args.errors_summary:
        action = "errors_summary"
    elif args.stats:
        action = "stats"
    flt = LogFilter(
        since=since,
        until=until,
        min_level=args.min_level,
        levels=split_levels(args.level) or None,
        source_type=args.source_type,
        source_id=args.source_id,
        worker_id=args.worker,
        task_id=args.task,
        cycle_number=args.cycle,
        search=args.search,
    )
    _refuse_unused(args, action)
    if action == "errors_summary" and args.limit is not None and args.limit > 1000:
        raise QueryInputError(
            f"--limit of --errors-summary must be between 1 and 1000 entries per list, "
            f"got {args.limit}"
        )
    if args.follow and action != "list":
        raise QueryInputError(
            "--follow works with the row listing only, not with timelines or summaries"
        )
    if args.follow and args.until:
        raise QueryInputError("--follow reads on from now: --until does not apply")
    if args.follow and args.fmt == "json":
        raise QueryInputError("--follow never ends a JSON array: use --format jsonl")
    if args.follow and args.export:
        raise QueryInputError("--follow cannot write an --export file; redirect stdout instead")
    if args.interval <= 0:
        raise QueryInputError(f"--interval must be above 0 seconds, got {args.interval:g}")
    if args.after is not None:
        calls.log_cursor(args.after)  # checks the id's shape now
    default_order = (
        "newest" if action == "list" and not args.export and not args.follow else "oldest"
    )
    fmt = args.fmt or "table"
    if args.export is not None:
        fmt = logs_render.export_format(args.export, args.fmt)
        if action in ("errors_summary", "stats") and args.fmt == "table":
            fmt = "table"  # a summary is small: its text tables can be exported as they are
    return Request(
        action=action,
        filter=flt,
        since=since,
        until=until,
        limit=args.limit,
        newest_first=(args.order or default_order) == "newest",
        fmt=fmt,
        color=args.color,
        export=args.export,
        after_id=args.after,
        target=target,
        follow=args.follow,
        interval=args.interval,
    )


def _refuse_unused(args: argparse.Namespace, action: str) -> None:
    """A flag the chosen mode would ignore is an error, never silently dropped."""
    allowed = {
        "list": None,
        "task_timeline": set(),
        "worker_timeline": set(),
        "errors_summary": {"source_type", "worker"},
        "stats": set(),
    }[action]
    if allowed is None:
        return
    filters = (
        "worker",
        "task",
        "source_type",
        "source_id",
        "level",
        "min_level",
        "cycle",
        "search",
    )
    given = [f for f in filters if getattr(args, f)]
    extra = [f for f in given if f not in allowed]
    if extra:
        flag = "--" + action.replace("_", "-")
        names = ", ".join("--" + f.replace("_", "-") for f in extra)
        raise QueryInputError(
            f"{flag} does not take {names}; "
            "filter the row listing instead (e.g. --task/--worker with other filters)"
        )
    if action in ("errors_summary", "stats") and (args.after or args.order):
        raise QueryInputError(
            f"--{action.replace('_', '-')} is one summary: --after/--order do not apply"
        )
    if action.endswith("timeline") and args.order == "newest":
        raise QueryInputError("timelines are oldest first; --order newest applies to the listing")
    if action == "task_timeline" and (args.since or args.until):
        raise QueryInputError(
            "--task-timeline covers the task's whole life: --since/--until do not apply"
        )


def run(args: argparse.Namespace) -> int:
    """Runs the subcommand: a flag the checks refuse is a usage error (exit status 2)."""
    try:
        request = build_request(args)
    except QueryInputError as error:
        raise UsageError(str(error)) from None
    with open_checked_executor(get_settings()) as db:
        return execute(db, request, sys.stdout, sys.stderr)


def execute(db: CallExecutor, request: Request, out: TextIO, err: TextIO) -> int:
    """Runs a checked request on ``db``, writing results to ``out`` and notes to ``err``."""
    with ExitStack() as stack:
        target = out
        if request.export is not None:
            try:
                target = stack.enter_context(request.export.open("w", encoding="utf-8", newline=""))
            except OSError as error:
                raise QueryInputError(
                    f"cannot write --export file {request.export}: {error.strerror}"
                ) from None
        if request.action in ("errors_summary", "stats"):
            _summary(db, request, target, out)
            if request.export is not None:
                err.write(f"exported the summary to {request.export} ({request.fmt})\n")
            return 0
        color = request.export is None and logs_render.use_color(request.color, out)
        fmt = request.fmt
        writer = RowWriter(target, fmt, color=color, width=logs_render.terminal_width(target))
        after = _resolve_after(db, request)
        if request.follow:
            return follow(db, request.filter, writer, err, backlog=request.limit or 20,
                          interval=request.interval, after=after)  # fmt: skip
        shown, cut = _rows(db, request, writer, after)
        writer.close()
        if request.export is not None:
            err.write(f"exported {shown} rows to {request.export} ({fmt})\n")
        if cut is not None:
            err.write(
                f"showing {shown} row{'' if shown == 1 else 's'}; more match. "
                f"Continue with the same flags and --after {cut.id}\n"
            )
        elif shown == 0 and request.export is None and request.fmt == "table":
            err.write("no matching logs\n")
    return 0


def _resolve_after(db: CallExecutor, request: Request) -> Cursor | None:
    if request.after_id is None:
        return None
    window = (None, None) if request.action == "task_timeline" else (request.since, request.until)
    cursor = db.run(calls.log_cursor(request.after_id, *window))
    if cursor is None:
        raise QueryInputError(f"--after {request.after_id}: no log row has this id in the window")
    return cursor


def _page_call(request: Request, page_size: int) -> Any:
    def page(cursor: Cursor | None) -> Call[LogPage]:
        if request.action == "task_timeline":
            assert request.target is not None
            return calls.task_timeline(request.target, after=cursor, limit=page_size)
        if request.action == "worker_timeline":
            assert request.target is not None
            return calls.worker_timeline(
                request.target, request.since, request.until, after=cursor, limit=page_size
            )
        return calls.query_logs(
            request.filter, after=cursor, limit=page_size, newest_first=request.newest_first
        )

    return page


def _rows(
    db: CallExecutor, request: Request, writer: RowWriter, after: Cursor | None
) -> tuple[int, Cursor | None]:
    """Writes the rows page by page; returns how many and, when the limit cut, where."""
    timeline = request.action != "list"
    limit = request.limit or (None if request.export else (1000 if timeline else 100))
    page_size = min(limit or 1000, 1000)
    shown = 0
    for page in iter_pages(db, _page_call(request, page_size), after=after):
        rows = page.rows if limit is None else page.rows[: limit - shown]
        writer.write(rows)
        shown += len(rows)
        if limit is not None and shown >= limit:
            more = page.more or len(rows) < len(page.rows)
            return shown, (rows[-1].cursor if more and rows else None)
    return shown, None


def _seed_keys(
    db: CallExecutor, request: Request, value: dict[str, Any], until: datetime
) -> dict[str, Any]:
    """The seed's keys for a summary's JSON (:mod:`orchestrator.cli.logs_seed_keys`)."""
    if request.action == "stats":
        return logs_seed_keys.stats_keys(value)
    return logs_seed_keys.errors_summary_keys(
        db, value, since=request.since, until=until, source_type=request.filter.source_type,
        worker_id=request.filter.worker_id, top=request.limit or 20,
    )  # fmt: skip


def _summary(db: CallExecutor, request: Request, target: TextIO, out: TextIO) -> None:
    until = request.until or datetime.now(UTC)
    if request.action == "errors_summary":
        call: Call[Any] = calls.errors_summary(
            request.since, until, source_type=request.filter.source_type,
            worker_id=request.filter.worker_id, top=request.limit or 20,
        )  # fmt: skip
    else:
        call = log_calls.log_statistics(request.since, until)
    value = dataclasses.asdict(db.run(call))
    if request.fmt == "json":
        value |= _seed_keys(db, request, value, until)
    colored = target is out and logs_render.use_color(request.color, out)
    write_summary(
        target,
        request.action,
        value,
        request.fmt,
        colors=RowWriter(target, "table", color=colored),
        width=logs_render.terminal_width(target),
    )
