"""What the dashboard's user chose and where its tail stands: plain values, no I/O.

Kept apart from the widgets so the rules (how ``l`` cycles, how a filter change
restarts the tail, how the retry delay grows) are tested without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orchestrator.query.model import Cursor, level_name

# What ``l`` steps through; None shows everything (DEBUG and up).
LEVEL_CYCLE: tuple[str | None, ...] = (None, "INFO", "WARNING", "ERROR", "CRITICAL")
NIL_ID = "00000000-0000-0000-0000-000000000000"


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
    """The four things the dashboard narrows by; None (or '') means "any"."""

    min_level: str | None = None
    source_type: str | None = None
    worker_id: str | None = None
    search: str | None = None

    def __post_init__(self) -> None:
        for name in ("source_type", "worker_id", "search"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                object.__setattr__(self, name, None)

    def with_(self, **changes: Any) -> TailFilter:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def describe(self) -> str:
        """One short line for the status bar, e.g. ``level>=ERROR worker=gpu-1 "OOM"``."""
        parts = []
        if self.min_level:
            parts.append(f"level>={self.min_level}")
        if self.source_type:
            parts.append(f"source={self.source_type}")
        if self.worker_id:
            parts.append(f"worker={self.worker_id}")
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
    under the old filter is recognised and dropped. ``cursor`` is None until the first
    fill; after an empty fill it is a watermark (the fill's upper bound, nil id).
    """

    filter: TailFilter
    paused: bool = False
    generation: int = 0
    cursor: Cursor | None = None
    filled: bool = False

    def change_filter(self, new: TailFilter) -> bool:
        """Restarts the tail under ``new``; False (nothing to do) when it is the same."""
        if new == self.filter:
            return False
        self.filter = new
        self.generation += 1
        self.cursor = None
        self.filled = False
        return True
