"""Where the dashboard's rows and numbers come from.

:class:`TailSource` is the small protocol the app depends on, so the UI (and its
tests) never see a driver. :class:`QueryTailSource` is the real one: the tail and the
timelines through the query API (keyset on ``("timestamp", id)``), the header through
``func_log_dashboard_summary``, the jobs screen through ``func_jobs_overview``, over
any executor with ``run(call)``, such as the one ``open_executor`` yields (which
reconnects by itself after a failure).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from orchestrator.dashboard.calls import (
    DashboardSummary,
    JobsOverview,
    dashboard_summary,
    jobs_overview,
)
from orchestrator.dashboard.state import TailFilter
from orchestrator.db.calls import CallExecutor
from orchestrator.query import Cursor, LogPage, LogRow, query_logs
from orchestrator.query import calls as query_calls


class TailSource(Protocol):
    """What the dashboard asks of a database. Every method may raise on failure."""

    def summary(self, flt: TailFilter, window_minutes: int) -> DashboardSummary:
        """The header's numbers under the filter's source type and worker."""
        ...

    def fetch_initial(self, flt: TailFilter, limit: int, until: datetime) -> Sequence[LogRow]:
        """The newest ``limit`` rows before ``until``, oldest first."""
        ...

    def fetch_new(
        self,
        flt: TailFilter,
        after: Cursor,
        limit: int,
        until: datetime,
        except_ids: Collection[str] = (),
    ) -> LogPage:
        """Up to ``limit`` rows after ``after`` and before ``until``, oldest first,
        without the rows of ``except_ids``."""
        ...

    def task_timeline(self, task_id: str, limit: int) -> LogPage:
        """The first ``limit`` rows of a task's whole life, oldest first."""
        ...

    def worker_timeline(
        self, worker_id: str, since: datetime, until: datetime, limit: int
    ) -> LogPage:
        """The first ``limit`` rows of a worker in ``[since, until)``, oldest first."""
        ...

    def jobs(self, recent: int) -> JobsOverview:
        """The jobs screen's numbers and lists."""
        ...

    def close(self) -> None:
        """Releases the connection."""
        ...


class QueryTailSource:
    """The dashboard's source over the query API (see the module docstring)."""

    def __init__(self, executor: CallExecutor) -> None:
        self._db = executor

    def summary(self, flt: TailFilter, window_minutes: int) -> DashboardSummary:
        """The header's numbers (only source type and worker narrow them)."""
        return self._db.run(dashboard_summary(window_minutes, flt.source_type, flt.worker_id))

    def fetch_initial(self, flt: TailFilter, limit: int, until: datetime) -> Sequence[LogRow]:
        """The newest ``limit`` rows (read newest first, returned oldest first)."""
        page = query_logs(self._db, flt.query(until), limit=limit, newest_first=True)
        return page.rows[::-1]

    def fetch_new(
        self,
        flt: TailFilter,
        after: Cursor,
        limit: int,
        until: datetime,
        except_ids: Collection[str] = (),
    ) -> LogPage:
        """Rows strictly after ``after``, oldest first, except those of ``except_ids``
        (shown already); nothing before ``after`` is read."""
        return query_logs(
            self._db, flt.query(until), after=after, limit=limit, except_ids=except_ids
        )

    def task_timeline(self, task_id: str, limit: int) -> LogPage:
        """``func_task_timeline``: the task's whole life, whatever its age."""
        return self._db.run(query_calls.task_timeline(task_id, limit=limit))

    def worker_timeline(
        self, worker_id: str, since: datetime, until: datetime, limit: int
    ) -> LogPage:
        """``func_worker_timeline`` over the window."""
        return self._db.run(query_calls.worker_timeline(worker_id, since, until, limit=limit))

    def jobs(self, recent: int) -> JobsOverview:
        """``func_jobs_overview``."""
        return self._db.run(jobs_overview(recent))

    def close(self) -> None:
        """Closes the executor when it can be closed."""
        close = getattr(self._db, "close", None)
        if callable(close):
            close()
