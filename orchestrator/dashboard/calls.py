"""The dashboard's operations: the header, ``func_log_dashboard_summary``
(sql/functions/logs/dashboard.sql), and the jobs screen, ``func_jobs_overview``
(sql/functions/jobs/overview.sql).

The database counts over short windows (5 minutes for rates, the last hour of errors
through the errors-only index), so a refresh costs a few milliseconds whatever the
table's size, and every driver (psycopg, Supabase REST) gets the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.db.calls import Call


@dataclass(frozen=True, slots=True)
class DashboardSummary:
    """What the header shows; ``queue_depth`` is None until the job tables exist."""

    now: datetime
    logs_per_minute: float
    error_rate: float
    active_workers: int
    errors_per_minute: tuple[int, ...]
    queue_depth: int | None = None
    queue_error: str | None = None


def _decode(raw: Any) -> DashboardSummary:
    queue = raw.get("queue_depth")
    return DashboardSummary(
        now=datetime.fromisoformat(str(raw["now"])),
        logs_per_minute=float(raw["logs_per_minute"]),
        error_rate=float(raw["error_rate"]),
        active_workers=int(raw["active_workers"]),
        errors_per_minute=tuple(int(n) for n in raw["errors_per_minute"]),
        queue_depth=None if queue is None else int(queue),
        queue_error=raw.get("queue_error"),
    )


def dashboard_summary(
    window_minutes: int = 60, source_type: str | None = None, worker_id: str | None = None
) -> Call[DashboardSummary]:
    """Rates of the last 5 minutes and errors per minute over ``window_minutes``."""
    return Call(
        "func_log_dashboard_summary",
        {"window_minutes": window_minutes, "source_type": source_type, "worker_id": worker_id},
        _decode,
    )


@dataclass(frozen=True, slots=True)
class JobsOverview:
    """What the jobs screen shows: counts, who runs what, what waits for a decision,
    and the latest failures (lists as the database built them)."""

    now: datetime
    queued: int
    running: int
    awaiting_approval: int
    running_by_worker: tuple[dict[str, Any], ...] = field(default=())
    approvals: tuple[dict[str, Any], ...] = field(default=())
    recent_failures: tuple[dict[str, Any], ...] = field(default=())


def _overview(raw: Any) -> JobsOverview:
    return JobsOverview(
        now=datetime.fromisoformat(str(raw["now"])),
        queued=int(raw["queued"]),
        running=int(raw["running"]),
        awaiting_approval=int(raw["awaiting_approval"]),
        running_by_worker=tuple(raw["running_by_worker"]),
        approvals=tuple(raw["approvals"]),
        recent_failures=tuple(raw["recent_failures"]),
    )


def jobs_overview(recent: int = 10) -> Call[JobsOverview]:
    """Queued and running counts, running per worker, the ``recent`` latest failures
    and the ``recent`` approval requests nearest their deadline."""
    return Call("func_jobs_overview", {"recent": recent}, _overview)
