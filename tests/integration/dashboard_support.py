"""Helpers of the dashboard tests: a recording source, rows at known times, a pilot loop.

``SqlTailSource`` reads the real system_logs with a small keyset query; it stands in
for the query API's adapter until that lands, behind the same TailSource protocol.
``Recording`` wraps any source and keeps every call, so a test can assert the cursor
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
from psycopg.rows import class_row

from orchestrator.dashboard.app import DashboardApp, DashboardOptions
from orchestrator.dashboard.source import Reconnecting, TailPage, summary_of
from orchestrator.dashboard.state import TailCursor, TailFilter
from orchestrator.dashboard.summary import DashboardSummary
from orchestrator.db.psycopg import PsycopgExecutor, connect
from tests.integration.logrows import entry, insert

SEVERITY = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}


@dataclass
class Row:
    id: Any
    timestamp: datetime
    log_level: str
    source_type: str
    source_id: str
    worker_id: str | None
    message: str
    exception: str | None


class SqlTailSource:
    """The TailSource protocol over plain SQL; ``url()`` is asked at every (re)connect,
    so a test can point it at a closed port and back."""

    def __init__(self, url: Callable[[], str]) -> None:
        self._url = url
        self._db = Reconnecting(lambda: PsycopgExecutor(connect(self._url(), connect_timeout=2)))
        self._conn: psycopg.Connection[Any] | None = None

    def summary(self, flt: TailFilter, window_minutes: int) -> DashboardSummary:
        return summary_of(self._db, flt, window_minutes)

    def _rows(self, flt: TailFilter, where: str, params: list[Any], order: str, limit: int):
        conditions = [where]
        if flt.min_level:
            conditions.append("severity_number >= %s")
            params.append(SEVERITY[flt.min_level])
        for column in ("source_type", "worker_id"):
            if getattr(flt, column):
                conditions.append(f"{column} = %s")
                params.append(getattr(flt, column))
        if flt.search:
            conditions.append("strpos(message, %s) > 0")
            params.append(flt.search)
        if self._conn is None:
            self._conn = connect(self._url(), connect_timeout=2)
        try:
            cur = self._conn.cursor(row_factory=class_row(Row))
            return cur.execute(
                "SELECT id, timestamp, log_level, source_type, source_id, worker_id, message, "
                f"exception FROM system_logs WHERE {' AND '.join(conditions)} "
                f'ORDER BY "timestamp" {order}, id {order} LIMIT %s',
                [*params, limit],
            ).fetchall()
        except BaseException:
            self.close()
            raise

    def fetch_initial(self, flt: TailFilter, limit: int, until: datetime) -> Sequence[Row]:
        return list(reversed(self._rows(flt, '"timestamp" < %s', [until], "DESC", limit)))

    def fetch_new(
        self, flt: TailFilter, after: TailCursor, limit: int, until: datetime
    ) -> TailPage:
        rows = self._rows(
            flt,
            '("timestamp", id) > (%s::timestamptz, %s::uuid) AND "timestamp" < %s',
            [after.timestamp, after.id, until],
            "ASC",
            limit + 1,
        )
        return TailPage(rows[:limit], len(rows) > limit)

    def close(self) -> None:
        self._db.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


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

    def fetch_new(self, flt, after, limit, until):
        page = self.inner.fetch_new(flt, after, limit, until)
        self.calls.append(("fetch_new", after, len(page.rows)))
        return page

    def close(self):
        self.inner.close()

    def named(self, name: str) -> list[tuple[str, Any, int]]:
        return [call for call in self.calls if call[0] == name]


def add_rows(conn: psycopg.Connection[Any], messages: Sequence[str], **fields: Any) -> list[str]:
    """Inserts one row per message, 10 ms apart, ending a few ms before now; returns ids."""
    now = datetime.now(UTC)
    entries = [
        entry(
            id=str(uuid.uuid4()),
            timestamp=(now - timedelta(milliseconds=10 * (len(messages) - i))).isoformat(),
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
    return [strip.text.rstrip() for strip in app.query_one("#tail").lines]


async def wait_for(pilot: Any, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Lets the app run until ``predicate`` holds (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


def run(coro: Any) -> Any:
    """Runs a pilot coroutine from a plain (sync) test."""
    return asyncio.run(coro)
