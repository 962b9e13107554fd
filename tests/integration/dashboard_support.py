"""Helpers of the dashboard tests: a recording source, rows at known times, a pilot loop.

``real_source`` is the shipped QueryTailSource over psycopg. ``Recording`` wraps it and keeps every call, so a test can assert the cursor
each read started from and how many rows it brought.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from orchestrator.dashboard.app import DashboardApp, DashboardOptions
from orchestrator.dashboard.source import QueryTailSource
from orchestrator.db.executor import PsycopgSession
from tests.integration.logrows import entry, insert


class MovableSession(PsycopgSession):
    """open_executor's psycopg session, whose URL a test may move (to a closed port and
    back) between connections."""

    def __init__(self, url: Callable[[], str]) -> None:
        super().__init__(url(), "the test database", connect_timeout=2)
        self._where = url

    def run(self, call: Any) -> Any:
        self.url = self._where()
        return super().run(call)


def real_source(url: Callable[[], str]) -> QueryTailSource:
    """The shipped source over the session ``open_executor`` uses for a URL."""
    return QueryTailSource(MovableSession(url))


@dataclass
class Recording:
    """Wraps a source and records (method, cursor or limit, rows returned)."""

    inner: Any
    calls: list[tuple[str, Any, int]] = field(default_factory=list)

    def summary(self, flt, window_minutes):
        result = self.inner.summary(flt, window_minutes)
        self.calls.append(("summary", flt, 0))
        return result

    def fetch_initial(self, flt, limit, until):
        rows = self.inner.fetch_initial(flt, limit, until)
        self.calls.append(("fetch_initial", limit, len(rows)))
        return rows

    def fetch_new(self, flt, after, limit, until, except_ids=()):
        page = self.inner.fetch_new(flt, after, limit, until, except_ids)
        self.calls.append(("fetch_new", after, len(page.rows)))
        return page

    def task_timeline(self, task_id, limit):
        page = self.inner.task_timeline(task_id, limit)
        self.calls.append(("task_timeline", task_id, len(page.rows)))
        return page

    def worker_timeline(self, worker_id, since, until, limit):
        page = self.inner.worker_timeline(worker_id, since, until, limit)
        self.calls.append(("worker_timeline", worker_id, len(page.rows)))
        return page

    def jobs(self, recent):
        overview = self.inner.jobs(recent)
        self.calls.append(("jobs", recent, len(overview.recent_failures)))
        return overview

    def close(self):
        self.inner.close()

    def named(self, name: str) -> list[tuple[str, Any, int]]:
        return [call for call in self.calls if call[0] == name]


def add_rows(conn: psycopg.Connection[Any], messages: Sequence[str], **fields: Any) -> list[str]:
    """Inserts one row per message, 1 µs apart, ending just before now; returns ids."""
    now = datetime.now(UTC)
    entries = [
        entry(
            id=str(uuid.uuid4()),
            timestamp=(now - timedelta(microseconds=len(messages) - i)).isoformat(),
            message=message,
            **fields,
        )
        for i, message in enumerate(messages)
    ]
    assert insert(conn, entries).inserted == len(entries)
    return [e["id"] for e in entries]


def options(**overrides: Any) -> DashboardOptions:
    """Fast settings for tests: refresh every 0.1 s, no delay, short retries."""
    base: dict[str, Any] = {"refresh": 0.1, "delay": 0.0, "max_backoff": 0.3}
    base.update(overrides)
    return DashboardOptions(**base)


def tail_text(app: DashboardApp) -> list[str]:
    """The tail's lines as plain text."""
    return app.tail.text_lines()


async def wait_for(pilot: Any, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Lets the app run until ``predicate`` holds (fails the test after ``timeout``,
    saying where the app stood)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            app = pilot.app
            raise AssertionError(
                f"condition not reached in time: rows_shown={app.rows_shown} "
                f"error={app.error!r} state={app.state!r}"
            )
        await pilot.pause(0.05)


def run(coro: Any) -> Any:
    """Runs a pilot coroutine from a plain (sync) test."""
    return asyncio.run(coro)
