"""The dashboard's database work, on a thread of its own, so the UI never waits on it.

One refresh at a time: the app sends a :class:`PollRequest` only after the answer to
the previous one arrived, so the start it carries is always the newest. A screen's
one-off reads (:class:`Fetch`: a task's or a worker's timeline) queue between refreshes
on the same connection. The thread is
a daemon: a query stuck on a dead network cannot keep the app from exiting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.dashboard.calls import DashboardSummary, JobsOverview
from orchestrator.dashboard.source import TailSource
from orchestrator.dashboard.state import TailFilter
from orchestrator.errors import DatabaseUnavailable, first_line
from orchestrator.query import Cursor, LogRow
from orchestrator.query.tailing import key


@dataclass(frozen=True, slots=True)
class PollRequest:
    """One refresh: always the header; the tail unless paused with enough waiting;
    the jobs overview while the jobs screen is open. ``start`` None: the first fill."""

    generation: int
    filter: TailFilter
    start: Cursor | None
    tail: bool = True
    initial_limit: int = 200
    page_limit: int = 500
    max_rows: int = 5000
    delay: float = 0.0
    window_minutes: int = 60
    jobs: bool = False
    recent: int = 10
    known: Cursor | None = None  # the newest row shown: the overlap ends there
    shown: frozenset[str] = frozenset()  # ids shown since start: the database skips them


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one refresh brought: rows read (oldest first, the lag window's overlap
    included), whether the first fill is done (``watermark``: where an empty one
    ended), the header, the jobs overview, and an error line when something failed
    (rows read before it count)."""

    generation: int
    rows: Sequence[LogRow] = ()
    filled: bool = False
    watermark: datetime | None = None
    summary: DashboardSummary | None = None
    more: bool = False
    error: str | None = None
    reads: int = field(default=0)
    jobs: JobsOverview | None = None
    jobs_error: str | None = None
    cut: bool = False  # the first fill stopped at its limit: older rows were left out


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

    The tail reads up to ``delay`` seconds before the database's clock (0: now; rows
    stamped in the future wait for their time), from ``request.start``: the lag window
    before the newest row shown, so a row that reached the database late is read too.
    """
    rows: list[LogRow] = []
    filled, more, reads = request.start is not None, False, 0
    watermark: datetime | None = None
    summary: DashboardSummary | None = None
    jobs: JobsOverview | None = None
    jobs_error: str | None = None
    cut = False
    try:
        summary = source.summary(request.filter, request.window_minutes)
        if request.jobs:
            try:
                jobs = source.jobs(request.recent)
            except Exception as error:  # the jobs screen says so; the tail goes on
                jobs_error = describe_error(error)
        if request.tail:
            until = summary.now - timedelta(seconds=request.delay)
            if request.start is None:
                rows = list(source.fetch_initial(request.filter, request.initial_limit, until))
                reads, filled = 1, True
                watermark = None if rows else until
                cut = len(rows) >= request.initial_limit
            else:
                # The overlap (rows up to the newest shown) is read whole; rows past
                # it, at most max_rows per refresh (the rest: next refresh, at once).
                cursor, more, beyond = request.start, True, 0
                known = None if request.known is None else key(request.known)
                while more and beyond < request.max_rows:
                    page = source.fetch_new(
                        request.filter, cursor, request.page_limit, until, request.shown
                    )
                    reads += 1
                    rows.extend(page.rows)
                    beyond += sum(1 for r in page.rows if known is None or key(r.cursor) > known)
                    if page.rows:
                        cursor = page.rows[-1].cursor
                    more = page.more and bool(page.rows)
    except Exception as error:
        return PollResult(request.generation, rows, filled, watermark, summary, False,
                          describe_error(error), reads, jobs, jobs_error)  # fmt: skip
    return PollResult(request.generation, rows, filled, watermark, summary, more, None, reads,
                      jobs, jobs_error, cut)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fetch:
    """A one-off read for a screen (a timeline): ``read(source)`` on the poller's
    thread, its result (or the error's line) handed to ``reply``."""

    read: Callable[[TailSource], object]
    reply: Callable[[object | None, str | None], object]


class Poller:
    """A daemon thread that runs :func:`poll` for each request and hands the result to
    ``deliver`` (which must be thread-safe: Textual's ``post_message`` is)."""

    def __init__(self, source: TailSource, deliver: Callable[[PollResult], object]) -> None:
        self._source = source
        self._deliver = deliver
        self._requests: queue.SimpleQueue[PollRequest | Fetch | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dashboard-poller", daemon=True)

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def submit(self, request: PollRequest) -> None:
        """Queues a refresh (the app sends the next one only after this one's answer)."""
        self._requests.put(request)

    def fetch(self, fetch: Fetch) -> None:
        """Queues a one-off read; it runs between refreshes, on the same connection."""
        self._requests.put(fetch)

    def stop(self, timeout: float = 2.0) -> None:
        """Asks the thread to close the connection and end; waits at most ``timeout``."""
        self._requests.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while (request := self._requests.get()) is not None:
                try:
                    if isinstance(request, Fetch):
                        self._fetch(request)
                    else:
                        self._deliver(poll(self._source, request))
                except RuntimeError:  # the app's loop is gone: it is exiting
                    return
        finally:
            self._source.close()

    def _fetch(self, fetch: Fetch) -> None:
        try:
            result = fetch.read(self._source)
        except Exception as error:
            fetch.reply(None, describe_error(error))
            return
        fetch.reply(result, None)
