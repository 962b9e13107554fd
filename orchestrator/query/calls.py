"""The read operations of ``sql/functions/logs/queries.sql`` as :class:`Call` values.

As in :mod:`orchestrator.db.calls`, each operation is written once and any executor
(psycopg, supabase-py ``rpc``) runs it. Arguments left None are not sent, so the SQL
defaults apply; times travel as ISO 8601 text, which PostgreSQL and PostgREST both parse.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from orchestrator.db.calls import Call
from orchestrator.errors import QueryInputError
from orchestrator.query.model import (
    Cursor,
    ErrorsByTask,
    ErrorsSummary,
    LogFilter,
    LogPage,
    aware,
    task_uuid,
)

MAX_PAGE = 10_000  # func_query_logs' own bound on row_limit


def _args(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise QueryInputError(f"limit must be between 1 and {MAX_PAGE} rows per page, got {limit}")
    return limit


def _after(after: Cursor | None) -> dict[str, Any]:
    return {} if after is None else {"after_timestamp": after.timestamp, "after_id": after.id}


def query_logs(
    filter: LogFilter,
    *,
    after: Cursor | None = None,
    limit: int = 100,
    newest_first: bool = False,
    except_ids: Collection[str] | None = None,
) -> Call[LogPage]:
    """One page of ``func_query_logs``: rows matching ``filter`` strictly after ``after``,
    leaving out the rows of ``except_ids`` (a tail's rows already shown)."""
    args = _args(
        since=filter.since,
        until=filter.until,
        min_level=filter.min_level,
        levels=list(filter.levels) if filter.levels else None,
        source_type=filter.source_type,
        source_id=filter.source_id,
        worker_id=filter.worker_id,
        task_id=filter.task_id,
        cycle_number=filter.cycle_number,
        search=filter.search,
    )
    args.update(_after(after))
    args.update(newest_first=newest_first, row_limit=_limit(limit))
    if except_ids:
        args["except_ids"] = sorted(except_ids)
    return Call("func_query_logs", args, LogPage.from_json)


def task_timeline(task_id: str, *, after: Cursor | None = None, limit: int = 1000) -> Call[LogPage]:
    """One page of a task's whole life, oldest first (``func_task_timeline``)."""
    args = {"task_id": task_uuid(task_id), **_after(after), "row_limit": _limit(limit)}
    return Call("func_task_timeline", args, LogPage.from_json)


def worker_timeline(
    worker_id: str,
    since: datetime,
    until: datetime | None = None,
    *,
    after: Cursor | None = None,
    limit: int = 1000,
) -> Call[LogPage]:
    """One page of a worker's logs in ``[since, until)``, oldest first."""
    if not worker_id.strip():
        raise QueryInputError("worker id must not be empty")
    args = _args(
        worker_id=worker_id,
        since=aware(since, "since"),
        until=None if until is None else aware(until, "until"),
    )
    args.update(_after(after), row_limit=_limit(limit))
    return Call("func_worker_timeline", args, LogPage.from_json)


def _errors_args(
    since: datetime,
    until: datetime | None,
    source_type: str | None,
    worker_id: str | None,
    top: int,
) -> dict[str, Any]:
    """The arguments both error aggregates take, checked."""
    if not 1 <= top <= 1000:
        raise QueryInputError(f"top must be between 1 and 1000, got {top}")
    return _args(
        since=aware(since, "since"),
        until=None if until is None else aware(until, "until"),
        source_type=source_type,
        worker_id=worker_id,
        top=top,
    )


def errors_summary(
    since: datetime,
    until: datetime | None = None,
    *,
    source_type: str | None = None,
    worker_id: str | None = None,
    top: int = 20,
) -> Call[ErrorsSummary]:
    """ERROR and CRITICAL counts of ``[since, until)`` (``func_log_errors_summary``)."""
    args = _errors_args(since, until, source_type, worker_id, top)
    return Call("func_log_errors_summary", args, ErrorsSummary.from_json)


def errors_by_task(
    since: datetime,
    until: datetime | None = None,
    *,
    source_type: str | None = None,
    worker_id: str | None = None,
    top: int = 20,
) -> Call[ErrorsByTask]:
    """ERROR and CRITICAL counts of ``[since, until)`` per task (``func_log_errors_by_task``)."""
    args = _errors_args(since, until, source_type, worker_id, top)
    return Call("func_log_errors_by_task", args, ErrorsByTask.from_json)


def log_cursor(
    log_id: str, since: datetime | None = None, until: datetime | None = None
) -> Call[Cursor | None]:
    """The cursor of the row with this id (None when there is none), ``func_log_cursor``."""
    try:
        canonical = task_uuid(log_id)
    except QueryInputError:
        raise QueryInputError(
            f"malformed log id {log_id!r}: expected the UUID of a log row"
        ) from None
    args = _args(log_id=canonical, since=since, until=until)
    return Call("func_log_cursor", args, Cursor.from_json)
