"""The dashboard's database work, on a thread of its own, so the UI never waits on it.

One request at a time: the app sends a :class:`PollRequest` only after the answer to
the previous one arrived, so the cursor it carries is always the newest. The thread is
a daemon: a query stuck on a dead network cannot keep the app from exiting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from orchestrator.dashboard.calls import DashboardSummary
from orchestrator.dashboard.source import TailSource
from orchestrator.dashboard.state import NIL_ID, TailFilter
from orchestrator.errors import DatabaseUnavailable, first_line
from orchestrator.query import Cursor, LogRow


@dataclass(frozen=True, slots=True)
class PollRequest:
    """One refresh: always the header; the tail too unless paused."""

    generation: int
    filter: TailFilter
    cursor: Cursor | None
    filled: bool
    tail: bool = True
    initial_limit: int = 200
    page_limit: int = 500
    max_rows: int = 5000
    delay: float = 0.0
    window_minutes: int = 60


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one refresh brought: rows to append (oldest first), the cursor after them,
    the header, and an error line when something failed (rows read before it count)."""

    generation: int
    rows: Sequence[LogRow] = ()
    cursor: Cursor | None = None
    filled: bool = False
    summary: DashboardSummary | None = None
    more: bool = False
    error: str | None = None
    reads: int = field(default=0)


def describe_error(error: BaseException) -> str:
    """One line for the status bar: what failed and the first line of why. The
    executors raise only the hub's errors, so "cannot talk to the database"
    (:class:`DatabaseUnavailable`) is told apart from "the query is wrong" by kind."""
    text = first_line(error)
    if len(text) > 160:
        text = text[:157] + "..."
    if isinstance(error, DatabaseUnavailable | OSError):
        return f"database unreachable: {text}"
    return f"query failed: {text}"


def poll(source: TailSource, request: PollRequest) -> PollResult:
    """Runs one refresh against ``source``; never raises.

    The tail stops ``delay`` seconds before the database's clock, so rows that reach
    the database a little after their timestamp (log handlers send in batches) are
    still read in order instead of landing behind the cursor.
    """
    rows: list[LogRow] = []
    cursor, filled, more, reads = request.cursor, request.filled, False, 0
    summary: DashboardSummary | None = None
    try:
        summary = source.summary(request.filter, request.window_minutes)
        if request.tail:
            until = summary.now - timedelta(seconds=request.delay)
            if not filled or cursor is None:
                rows = list(source.fetch_initial(request.filter, request.initial_limit, until))
                reads += 1
                filled = True
                cursor = rows[-1].cursor if rows else Cursor(until.isoformat(), NIL_ID)
            else:
                more = True
                while more and len(rows) < request.max_rows:
                    limit = min(request.page_limit, request.max_rows - len(rows))
                    page = source.fetch_new(request.filter, cursor, limit, until)
                    reads += 1
                    rows.extend(page.rows)
                    if page.rows:
                        cursor = page.rows[-1].cursor
                    more = page.more and bool(page.rows)
    except Exception as error:
        return PollResult(
            request.generation, rows, cursor, filled, summary, False, describe_error(error), reads
        )
    return PollResult(request.generation, rows, cursor, filled, summary, more, None, reads)


class Poller:
    """A daemon thread that runs :func:`poll` for each request and hands the result to
    ``deliver`` (which must be thread-safe: Textual's ``post_message`` is)."""

    def __init__(self, source: TailSource, deliver: Callable[[PollResult], object]) -> None:
        self._source = source
        self._deliver = deliver
        self._requests: queue.SimpleQueue[PollRequest | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dashboard-poller", daemon=True)

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def submit(self, request: PollRequest) -> None:
        """Queues a refresh (the app sends the next one only after this one's answer)."""
        self._requests.put(request)

    def stop(self, timeout: float = 2.0) -> None:
        """Asks the thread to close the connection and end; waits at most ``timeout``."""
        self._requests.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while (request := self._requests.get()) is not None:
                result = poll(self._source, request)
                try:
                    self._deliver(result)
                except RuntimeError:  # the app's loop is gone: it is exiting
                    return
        finally:
            self._source.close()
