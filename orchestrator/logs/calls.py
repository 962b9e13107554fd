"""The log store's operations as :class:`~orchestrator.db.calls.Call` values.

One builder per SQL function of the log store (``sql/functions/logs/``,
``sql/functions/workers/``), each with the value it returns; any executor (psycopg, asyncpg,
supabase-py) runs them, so no rule is written twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.db.calls import Call
from orchestrator.db.jsonsafe import json_safe


@dataclass(frozen=True, slots=True)
class Rejected:
    """One log entry the database refused, with its position in the batch and why."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class InsertResult:
    """What ``func_insert_logs_batch`` did with a batch."""

    success: bool
    inserted: int
    duplicates: int
    rejected: tuple[Rejected, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """What ``func_cleanup_old_logs`` removed."""

    deleted: int
    dropped_partitions: tuple[str, ...]
    skipped_partitions: tuple[str, ...]
    retention_hours: int


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """What ``func_maintain_log_partitions`` created."""

    created: tuple[str, ...]
    moved_from_default: int


@dataclass(frozen=True, slots=True)
class LogStatistics:
    """Counts over a time window, aggregated by the database."""

    since: str
    until: str
    total: int
    errors: int
    by_level: dict[str, int]
    by_source: list[dict[str, Any]] = field(default_factory=list)
    by_worker: list[dict[str, Any]] = field(default_factory=list)


def insert_result(raw: Any) -> InsertResult:
    """Decodes the ``{success, inserted, duplicates, rejected}`` every insert path returns."""
    return InsertResult(
        success=bool(raw["success"]),
        inserted=int(raw["inserted"]),
        duplicates=int(raw["duplicates"]),
        rejected=tuple(Rejected(int(r["index"]), str(r["reason"])) for r in raw["rejected"]),
        error=raw.get("error"),
    )


def insert_logs_batch(entries: Sequence[Mapping[str, Any]]) -> Call[InsertResult]:
    """Insert log entries (dicts in the ``func_insert_logs_batch`` shape).

    Text is made ``jsonb``-safe first (see :mod:`orchestrator.db.jsonsafe`), so one
    entry with a NUL byte cannot make the server refuse the whole batch.
    """
    return Call("func_insert_logs_batch", {"logs": json_safe(list(entries))}, insert_result)


def cleanup_old_logs(retention_hours: int = 48) -> Call[CleanupResult]:
    """Drop the partitions older than ``retention_hours``."""
    return Call(
        "func_cleanup_old_logs",
        {"retention_hours": retention_hours},
        lambda raw: CleanupResult(
            deleted=int(raw["deleted"]),
            dropped_partitions=tuple(raw["dropped_partitions"]),
            skipped_partitions=tuple(raw["skipped_partitions"]),
            retention_hours=int(raw["retention_hours"]),
        ),
    )


def maintain_log_partitions(days_ahead: int = 3, days_behind: int = 1) -> Call[PartitionResult]:
    """Create the coming days' partitions and re-home rows from the default partition."""
    return Call(
        "func_maintain_log_partitions",
        {"days_ahead": days_ahead, "days_behind": days_behind},
        lambda raw: PartitionResult(tuple(raw["created"]), int(raw["moved_from_default"])),
    )


def log_statistics(since: datetime, until: datetime) -> Call[LogStatistics]:
    """Counts by level, source and worker over ``[since, until)``."""
    return Call(
        "func_log_statistics",
        {"since": since.isoformat(), "until": until.isoformat()},
        lambda raw: LogStatistics(
            since=raw["since"],
            until=raw["until"],
            total=int(raw["total"]),
            errors=int(raw["errors"]),
            by_level={k: int(v) for k, v in raw["by_level"].items()},
            by_source=list(raw["by_source"]),
            by_worker=list(raw["by_worker"]),
        ),
    )


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """The worker row as the heartbeat left it, and what became of the logs it carried."""

    worker_id: str
    status: str
    heartbeat_count: int
    last_heartbeat_at: datetime
    logs: InsertResult


def _heartbeat_result(raw: Any) -> HeartbeatResult:
    row = raw["worker"]
    at = row["last_heartbeat_at"]
    at = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    count = int(row["heartbeat_count"])
    return HeartbeatResult(row["worker_id"], row["status"], count, at, insert_result(raw["logs"]))


def heartbeat_call(
    worker_id: str,
    status: str = "idle",
    current_task_id: str | uuid.UUID | None = None,
    metadata: Mapping[str, Any] | None = None,
    logs: Sequence[Mapping[str, Any]] = (),
) -> Call[HeartbeatResult]:
    """One heartbeat of ``worker_id`` carrying ``logs`` (``func_insert_logs_batch`` entries).

    ``metadata`` keys ``vram_total_mb``, ``vram_used_mb`` and ``hostname`` also land in
    columns of their own. Text is made ``jsonb``-safe, so one NUL byte in a log line
    cannot make the server refuse the heartbeat.
    """
    task = None if current_task_id is None else str(current_task_id)
    args: dict[str, Any] = {"worker_id": worker_id, "status": status, "current_task_id": task}
    args |= {"metadata": json_safe(dict(metadata or {})), "logs": json_safe(list(logs))}
    return Call("func_worker_heartbeat_with_logs", args, _heartbeat_result)


def log_maintenance_by_cron() -> Call[bool]:
    """Whether pg_cron runs the log maintenance jobs (sql/functions/daemon/leases.sql)."""
    return Call("func_log_maintenance_by_cron", {}, lambda raw: bool(raw["scheduled"]))
