"""The dashboard's header as one operation: ``func_log_dashboard_summary``
(sql/functions/logs/dashboard.sql).

The database counts over short windows (5 minutes for rates, the last hour of errors
through the errors-only index), so a refresh costs a few milliseconds whatever the
table's size, and every driver (psycopg, Supabase REST) gets the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
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
