"""What the dashboard's user chose and where its tail stands: plain values, no I/O.

Kept apart from the widgets so the rules (how ``l`` cycles, how a filter change
restarts the tail, which rows a refresh adds, how the retry delay grows) are tested
without a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from orchestrator.query.model import Cursor, LogFilter, LogRow, level_name, task_uuid
from orchestrator.query.tailing import LagWindow

# What ``l`` steps through; None shows everything (DEBUG and up).
LEVEL_CYCLE: tuple[str | None, ...] = (None, "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LAG = timedelta(seconds=10)


def parse_level(text: str | None) -> str | None:
    """A minimum level from a flag (as ``orchestrator logs`` reads it); DEBUG means no
    level filter at all. Raises QueryInputError naming the accepted levels."""
    if text is None or not text.strip():
        return None
    level = level_name(text)
    return None if level == "DEBUG" else level


def next_min_level(current: str | None) -> str | None:
    """The level after ``current`` in the ``l`` cycle (after CRITICAL: everything again)."""
    position = LEVEL_CYCLE.index(current) if current in LEVEL_CYCLE else 0
    return LEVEL_CYCLE[(position + 1) % len(LEVEL_CYCLE)]


@dataclass(frozen=True, slots=True)
class TailFilter:
    """What the dashboard narrows by; None (or '') means "any".

    ``min_level`` is a minimum (that severity and above) unless ``exact_level``, then
    that level only; ``task_id`` is checked (and made canonical) as a UUID.
    """

    min_level: str | None = None
    source_type: str | None = None
    worker_id: str | None = None
    search: str | None = None
    task_id: str | None = None
    exact_level: bool = False

    def __post_init__(self) -> None:
        for name in ("source_type", "worker_id", "search", "task_id"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                object.__setattr__(self, name, None)
        if self.task_id is not None:
            object.__setattr__(self, "task_id", task_uuid(self.task_id))
        if self.exact_level and self.min_level is None:
            object.__setattr__(self, "exact_level", False)

    def with_(self, **changes: Any) -> TailFilter:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def query(self, until: datetime | None = None) -> LogFilter:
        """The query API's filter for these choices, up to ``until`` (exclusive)."""
        exact = self.exact_level and self.min_level is not None
        return LogFilter(
            until=until,
            min_level=None if exact else self.min_level,
            levels=(self.min_level,) if exact and self.min_level else None,
            source_type=self.source_type,
            worker_id=self.worker_id,
            task_id=self.task_id,
            search=self.search,
        )

    def describe(self) -> str:
        """One short line for the status bar, e.g. ``level>=ERROR worker=gpu-1 "OOM"``."""
        parts = []
        if self.min_level:
            parts.append(f"level{'=' if self.exact_level else '>='}{self.min_level}")
        if self.source_type:
            parts.append(f"source={self.source_type}")
        if self.worker_id:
            parts.append(f"worker={self.worker_id}")
        if self.task_id:
            parts.append(f"task={self.task_id[:8]}")
        if self.search:
            parts.append(f'"{self.search}"')
        return " ".join(parts) if parts else "all logs"


@dataclass(slots=True)
class Backoff:
    """Retry delays that double from ``base`` up to ``cap`` and restart after a success."""

    base: float
    cap: float
    failures: int = 0

    def next_delay(self) -> float:
        """Records one more failure and returns how long to wait before the next try."""
        delay = min(self.cap, self.base * 2.0**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """A success: the next failure waits ``base`` again."""
        self.failures = 0


@dataclass(slots=True)
class TailState:
    """The tail's position and mode.

    ``generation`` grows with every filter change, so an answer to a question asked
    under the old filter is recognised and dropped. ``window`` says where the next read
    starts (the lag window before the newest row shown) and which rows were shown.
    While ``paused``, new rows wait in ``pending`` (at most ``max_pending``) and are
    shown on resume.
    """

    filter: TailFilter
    lag: timedelta = DEFAULT_LAG
    paused: bool = False
    generation: int = 0
    filled: bool = False
    max_pending: int = 5000
    window: LagWindow = field(init=False)
    pending: list[LogRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.window = LagWindow(self.lag)

    @property
    def start(self) -> Cursor | None:
        """Where the next read of the tail begins (None: the first fill is due)."""
        return self.window.start() if self.filled else None

    @property
    def pending_full(self) -> bool:
        """While paused, reading stops once this many rows wait."""
        return len(self.pending) >= self.max_pending

    def change_filter(self, new: TailFilter) -> bool:
        """Restarts the tail under ``new``; False (nothing to do) when it is the same."""
        if new == self.filter:
            return False
        self.filter = new
        self.generation += 1
        self.window = LagWindow(self.lag)
        self.filled = False
        self.pending.clear()
        return True

    def arrived(
        self,
        rows: Sequence[LogRow],
        *,
        filled: bool,
        watermark: datetime | None,
        cut: bool = False,
    ) -> list[LogRow]:
        """Takes a refresh's rows (oldest first; the lag window's overlap included) and
        returns those to show now: the ones never shown, unless paused, when they wait.
        ``watermark``: an empty first fill ended there; ``cut``: the first fill showed
        only the newest rows, so the older ones are not late arrivals."""
        if filled and not self.filled and rows and cut:
            self.window.hold_back(rows[0].cursor)
        self.filled = self.filled or filled
        fresh = self.window.admit(rows)
        if not fresh and watermark is not None:
            self.window.mark(watermark)
        if self.paused:
            self.pending.extend(fresh)
            return []
        return fresh

    def resume(self) -> list[LogRow]:
        """Live again: the rows that waited, to show now."""
        self.paused = False
        waiting, self.pending = self.pending, []
        return waiting
