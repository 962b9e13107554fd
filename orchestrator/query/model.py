"""The values of a log query: what to match (LogFilter), where a page ends (Cursor), and
what comes back (LogRow, LogPage, ErrorsSummary, ErrorsByTask).

Checks happen here, when a value is built, so the CLI, the dashboard and any other caller
get the same one-line :class:`~orchestrator.errors.QueryInputError` before anything
reaches the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from orchestrator.errors import QueryInputError
from orchestrator.logs.levels import ALIASES, SEVERITY

ACCEPTED_LEVELS = "DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL (or FATAL), in any case"


def level_name(text: str) -> str:
    """The canonical level for ``text`` (any case, WARN/FATAL aliases), or QueryInputError."""
    name = text.strip().upper()
    name = ALIASES.get(name, name)
    if name not in SEVERITY:
        raise QueryInputError(f"unknown level {text!r}; accepted: {ACCEPTED_LEVELS}")
    return name


def task_uuid(text: str) -> str:
    """``text`` as a canonical UUID string, or QueryInputError naming what is expected."""
    try:
        return str(uuid.UUID(text.strip()))
    except (ValueError, AttributeError):
        raise QueryInputError(
            f"malformed task id {text!r}: expected a UUID such as "
            "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a"
        ) from None


def aware(moment: datetime, what: str) -> datetime:
    """``moment`` with a zone: a naive time is read as UTC, the zone the store uses."""
    if not isinstance(moment, datetime):
        raise QueryInputError(f"{what} must be a datetime, got {type(moment).__name__}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What a log query matches; every field left None is not applied.

    ``since`` is inclusive and ``until`` exclusive; ``min_level`` keeps that severity and
    above, ``levels`` exactly those levels; ``search`` is a literal, case-insensitive
    substring of the message (``%``, ``_`` and ``\\`` have no special meaning).
    """

    since: datetime | None = None
    until: datetime | None = None
    min_level: str | None = None
    levels: tuple[str, ...] | None = None
    source_type: str | None = None
    source_id: str | None = None
    worker_id: str | None = None
    task_id: str | None = None
    cycle_number: int | None = None
    search: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.since is not None:
            set_(self, "since", aware(self.since, "since"))
        if self.until is not None:
            set_(self, "until", aware(self.until, "until"))
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise QueryInputError(
                f"empty time window: since ({self.since.isoformat()}) must be before "
                f"until ({self.until.isoformat()})"
            )
        if self.min_level is not None:
            set_(self, "min_level", level_name(self.min_level))
        if self.levels is not None:
            given = (self.levels,) if isinstance(self.levels, str) else self.levels
            names = tuple(dict.fromkeys(level_name(level) for level in given))
            set_(self, "levels", names or None)
        if self.task_id is not None:
            set_(self, "task_id", task_uuid(str(self.task_id)))
        if self.cycle_number is not None:
            try:
                cycle = int(self.cycle_number)
            except (TypeError, ValueError):
                raise QueryInputError(
                    f"cycle number must be an integer, got {self.cycle_number!r}"
                ) from None
            if not -(2**31) <= cycle < 2**31:
                raise QueryInputError(f"cycle number {cycle} is out of range")
            set_(self, "cycle_number", cycle)
        if self.search == "":
            set_(self, "search", None)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the (timestamp, id) of its last row.

    ``timestamp`` is always Python's ``isoformat()`` of the moment, so the cursor the
    database returns equals the one taken from the same row here (PostgreSQL's JSON drops
    trailing zeros of the microseconds: ``.30712`` is ``.307120``).
    """

    timestamp: str
    id: str

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Cursor | None:
        """The ``next`` object of a page (None stays None)."""
        if raw is None:
            return None
        return cls(_moment(str(raw["timestamp"])).isoformat(), str(raw["id"]))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class LogRow:
    """One row of ``system_logs``, every column."""

    id: str
    timestamp: datetime
    observed_at: datetime
    source_type: str
    source_id: str
    log_level: str
    severity_number: int
    logger_name: str | None
    message: str
    task_id: str | None
    worker_id: str | None
    cycle_number: int | None
    correlation_id: str | None
    exception: str | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LogRow:
        """A row as ``to_json(system_logs)`` renders it (over SQL or REST alike).

        Positional and without helpers: a 1,000-row page builds 1,000 of these, and the
        keyword form took three times as long (9 against 2.5 us a row), a third of the
        whole read of a timeline (bench/query.py).
        """
        get = raw.get
        metadata = get("metadata")
        return cls(
            str(raw["id"]),
            datetime.fromisoformat(raw["timestamp"]),
            datetime.fromisoformat(raw["observed_at"]),
            raw["source_type"],
            raw["source_id"],
            raw["log_level"],
            int(raw["severity_number"]),
            get("logger_name"),
            raw["message"],
            get("task_id"),
            get("worker_id"),
            get("cycle_number"),
            get("correlation_id"),
            get("exception"),
            dict(metadata) if metadata else {},
        )

    @property
    def cursor(self) -> Cursor:
        """The keyset position of this row: continue a read strictly after it."""
        return Cursor(self.timestamp.isoformat(), self.id)

    def to_json(self) -> dict[str, Any]:
        """Every column as JSON-ready values (times in ISO 8601), in column order."""
        out: dict[str, Any] = {}
        for column in fields(self):
            value = getattr(self, column.name)
            out[column.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of a read: its rows, whether more rows matched, and where to continue.

    ``next`` is set exactly when ``more`` is; a live tail that has read everything so far
    continues from ``last`` (the cursor of its last row) instead.
    """

    rows: tuple[LogRow, ...]
    more: bool
    next: Cursor | None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LogPage:
        """Decodes ``{"rows", "more", "next"}``."""
        return cls(
            rows=tuple(LogRow.from_json(r) for r in raw["rows"]),
            more=bool(raw["more"]),
            next=Cursor.from_json(raw.get("next")),
        )

    @property
    def last(self) -> Cursor | None:
        """The cursor of the last row on this page (None when the page is empty)."""
        return self.rows[-1].cursor if self.rows else None


@dataclass(frozen=True, slots=True)
class ErrorsSummary:
    """ERROR and CRITICAL logs of a window, aggregated by ``func_log_errors_summary``.

    The lists hold the top entries by count; ``distinct_*`` say how many there were.
    """

    since: str
    until: str
    total: int
    by_level: dict[str, int]
    by_source: list[dict[str, Any]]
    by_worker: list[dict[str, Any]]
    top_messages: list[dict[str, Any]]
    distinct_sources: int = 0
    distinct_workers: int = 0
    distinct_messages: int = 0

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ErrorsSummary:
        """Decodes the function's result."""
        return cls(
            since=str(raw["since"]),
            until=str(raw["until"]),
            total=int(raw["total"]),
            by_level={k: int(v) for k, v in raw["by_level"].items()},
            by_source=list(raw["by_source"]),
            by_worker=list(raw["by_worker"]),
            top_messages=list(raw["top_messages"]),
            distinct_sources=int(raw.get("distinct_sources", 0)),
            distinct_workers=int(raw.get("distinct_workers", 0)),
            distinct_messages=int(raw.get("distinct_messages", 0)),
        )


@dataclass(frozen=True, slots=True)
class ErrorsByTask:
    """ERROR and CRITICAL logs of a window counted per task (``func_log_errors_by_task``):
    the top tasks by count, and how many tasks there were."""

    by_task: list[dict[str, Any]]
    distinct_tasks: int

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ErrorsByTask:
        """Decodes the function's result."""
        return cls(list(raw["by_task"]), int(raw["distinct_tasks"]))


def split_levels(values: Iterable[str]) -> tuple[str, ...]:
    """``["error,critical", "warn"]`` (repeated flags, comma lists) as canonical levels."""
    parts = [part for value in values for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(level_name(part) for part in parts))
