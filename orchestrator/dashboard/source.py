"""Where the dashboard's rows and numbers come from.

:class:`TailSource` is the small protocol the app depends on, so the UI (and its
tests) never see a driver. :class:`QueryTailSource` is the real one: the tail through
``query_logs`` (keyset on ``("timestamp", id)``), the header through
``func_log_dashboard_summary``, over any executor with ``run(call)``, such as the one
``open_executor`` yields (which reconnects by itself after a failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from orchestrator.dashboard.calls import DashboardSummary, dashboard_summary
from orchestrator.dashboard.state import TailFilter
from orchestrator.db.calls import CallExecutor
from orchestrator.query import Cursor, LogFilter, LogPage, LogRow, query_logs


class TailSource(Protocol):
    """What the dashboard asks of a database. Every method may raise on failure."""

    def summary(self, flt: TailFilter, window_minutes: int) -> DashboardSummary:
        """The header's numbers under the filter's source type and worker."""
        ...

    def fetch_initial(self, flt: TailFilter, limit: int, until: datetime) -> Sequence[LogRow]:
        """The newest ``limit`` rows before ``until``, oldest first."""
        ...

    def fetch_new(self, flt: TailFilter, after: Cursor, limit: int, until: datetime) -> LogPage:
        """Up to ``limit`` rows after ``after`` and before ``until``, oldest first."""
        ...

    def close(self) -> None:
        """Releases the connection."""
        ...


def log_filter(flt: TailFilter, until: datetime) -> LogFilter:
    """The query API's filter for the dashboard's choices, up to ``until`` (exclusive)."""
    return LogFilter(
        until=until,
        min_level=flt.min_level,
        source_type=flt.source_type,
        worker_id=flt.worker_id,
        search=flt.search,
    )


class QueryTailSource:
    """The dashboard's source over the query API: ``query_logs`` for the tail (keyset
    on ``("timestamp", id)``), ``func_log_dashboard_summary`` for the header."""

    def __init__(self, executor: CallExecutor) -> None:
        self._db = executor

    def summary(self, flt: TailFilter, window_minutes: int) -> DashboardSummary:
        """The header's numbers (only source type and worker narrow them)."""
        return self._db.run(dashboard_summary(window_minutes, flt.source_type, flt.worker_id))

    def fetch_initial(self, flt: TailFilter, limit: int, until: datetime) -> Sequence[LogRow]:
        """The newest ``limit`` rows (read newest first, returned oldest first)."""
        page = query_logs(self._db, log_filter(flt, until), limit=limit, newest_first=True)
        return page.rows[::-1]

    def fetch_new(self, flt: TailFilter, after: Cursor, limit: int, until: datetime) -> LogPage:
        """Rows strictly after ``after``, oldest first; nothing before it is read."""
        return query_logs(self._db, log_filter(flt, until), after=after, limit=limit)

    def close(self) -> None:
        """Closes the executor when it can be closed."""
        close = getattr(self._db, "close", None)
        if callable(close):
            close()
