"""Operations of the hub as plain values: a SQL function name, named arguments, a decoder.

This is the driver seam. Every operation is written once here; psycopg (sync), asyncpg
(the daemon) and supabase-py (REST ``rpc``) only *execute* a :class:`Call`, so no rule
is written twice. Every hub function returns one ``jsonb`` value, which the driver hands
to ``decode`` as plain Python (dicts, lists, str, int).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from orchestrator.db.jsonsafe import json_safe

T = TypeVar("T")

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One call of a hub SQL function.

    ``args`` values are JSON-compatible (str, int, float, bool, None, list, dict); lists
    and dicts travel as ``jsonb``. Names are checked so a driver can splice them into SQL.
    """

    function: str
    args: Mapping[str, Any]
    decode: Callable[[Any], T]

    def __post_init__(self) -> None:
        for name in (self.function, *self.args):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")


class CallExecutor(Protocol):
    """Anything that runs a :class:`Call`: psycopg, supabase-py ``rpc``, any driver tomorrow."""

    def run(self, call: Call[T]) -> T: ...


class AsyncCallExecutor(Protocol):
    """The same for async code (the daemon): asyncpg's executor, or a test's stand-in."""

    async def run(self, call: Call[T]) -> T: ...


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


def _insert_result(raw: Any) -> InsertResult:
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
    return Call("func_insert_logs_batch", {"logs": json_safe(list(entries))}, _insert_result)


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
