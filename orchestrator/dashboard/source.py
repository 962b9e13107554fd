"""Where the dashboard's rows and numbers come from.

:class:`TailSource` is the small protocol the app depends on, so the UI (and its
tests) never see a driver. :class:`QueryTailSource` is the real one: the tail through
``query_logs`` (keyset on ``("timestamp", id)``), the header through
``func_log_dashboard_summary``, over any executor with ``run(call)``; it reconnects by
itself after a failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from orchestrator.dashboard.state import TailCursor, TailFilter
from orchestrator.dashboard.summary import DashboardSummary, dashboard_summary
from orchestrator.db.calls import Call

T = TypeVar("T")


class TailRow(Protocol):
    """The columns of a log row the dashboard shows (``query_logs``' LogRow has them)."""

    @property
    def id(self) -> Any: ...
    @property
    def timestamp(self) -> Any: ...
    @property
    def log_level(self) -> str: ...
    @property
    def source_type(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def worker_id(self) -> str | None: ...
    @property
    def message(self) -> str: ...
    @property
    def exception(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TailPage:
    """Rows after a cursor, oldest first; ``more`` when the limit cut them."""

    rows: Sequence[TailRow]
    more: bool


class TailSource(Protocol):
    """What the dashboard asks of a database. Every method may raise on failure."""

    def summary(self, flt: TailFilter, window_minutes: int) -> DashboardSummary:
        """The header's numbers under the filter's source type and worker."""
        ...

    def fetch_initial(self, flt: TailFilter, limit: int, until: datetime) -> Sequence[TailRow]:
        """The newest ``limit`` rows before ``until``, oldest first."""
        ...

    def fetch_new(
        self, flt: TailFilter, after: TailCursor, limit: int, until: datetime
    ) -> TailPage:
        """Up to ``limit`` rows after ``after`` and before ``until``, oldest first."""
        ...

    def close(self) -> None:
        """Releases the connection."""
        ...


class Executor(Protocol):
    """Anything that runs a :class:`Call` (psycopg, Supabase REST)."""

    def run(self, call: Call[T]) -> T: ...


class Reconnecting:
    """Holds one executor opened on demand; a failed call drops it, so the next call
    reconnects. ``open`` returns a context manager (as ``open_executor`` does) or an
    executor that is its own context manager."""

    def __init__(self, open: Callable[[], contextlib.AbstractContextManager[Any]]) -> None:
        self._open = open
        self._stack: contextlib.ExitStack | None = None
        self._executor: Executor | None = None

    def run(self, call: Call[T]) -> T:
        """Runs ``call``, connecting first if needed; on failure drops the connection."""
        try:
            if self._executor is None:
                stack = contextlib.ExitStack()
                try:
                    self._executor = stack.enter_context(self._open())
                except BaseException:
                    stack.close()
                    raise
                self._stack = stack
            return self._executor.run(call)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Closes the current connection, if any (errors while closing are moot)."""
        stack, self._stack, self._executor = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()


def summary_of(executor: Executor, flt: TailFilter, window_minutes: int) -> DashboardSummary:
    """The header's numbers for a filter (only source type and worker narrow them)."""
    return executor.run(dashboard_summary(window_minutes, flt.source_type, flt.worker_id))
