"""``SinkLogHandler``: ships log records to ``system_logs`` without slowing the caller.

Every argument is explicit here; :class:`~orchestrator.logs.setup.DatabaseLogHandler`
(the public name, and the one ``dictConfig`` uses) fills the ones left out from the
settings, so this module never reads ``.env`` or starts a database.

The calling thread snapshots the record and appends it to a bounded buffer
(:mod:`~orchestrator.logs.buffer`); one background thread per handler takes batches of
``batch_size`` (or whatever is there every ``flush_interval`` seconds) and sends them
through a sink (:mod:`~orchestrator.logs.sinks`). What earlier handlers got wrong, and
what this one does instead:

* records queued at exit were lost → an ``atexit`` hook drains every handler, bounded
  by ``close_timeout``; what could not be delivered is reported in one stderr line;
* failed batches were dropped → transient failures keep the batch and retry with
  exponential backoff and jitter; ids are made once per record, so a retry after an
  ambiguous failure is recognised by the database as a duplicate;
* one bad record failed its batch → the database rejects it alone; if the whole call
  fails on data, the batch is split in halves until the culprit is isolated;
* ``flush()`` sent nothing → ``flush(timeout)`` waits until everything buffered before
  the call was sent and says whether it all went;
* broken after ``fork()`` → the child gets a fresh buffer, thread and connection and
  never touches (or closes) the parent's;
* logged into itself → records from the shipping thread and from the drivers' loggers
  are ignored; the handler's own trouble goes to a rate-limited stderr line.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from orchestrator.errors import DatabaseUnavailable, HubError, InputRefused
from orchestrator.logs.buffer import RecordBuffer
from orchestrator.logs.guard import RateLimitedStderr
from orchestrator.logs.sinks import LogSink
from orchestrator.logs.snapshot import Snapshot, SnapshotHandler, to_entry

_live_handlers: weakref.WeakSet[SinkLogHandler] = weakref.WeakSet()

SinkFactory = Callable[[], LogSink]


class SinkLogHandler(SnapshotHandler):
    """A ``logging.Handler`` that batches records into the hub's ``system_logs`` table.

    ``sink`` is a zero-argument factory of a :class:`~orchestrator.logs.sinks.LogSink`
    (a factory, because a forked child needs a connection of its own). A batch goes out
    when ``batch_size`` records wait, or every ``flush_interval`` seconds; at most
    ``capacity`` records wait in memory.
    """

    def __init__(
        self,
        level: int | str = logging.INFO,
        *,
        sink: SinkFactory,
        source_type: str,
        source_id: str,
        worker_id: str | None = None,
        batch_size: int,
        flush_interval: float,
        capacity: int,
        max_batch: int = 1000,
        close_timeout: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__(level)
        self.source_type, self.source_id, self.worker_id = source_type, source_id, worker_id
        self.batch_size, self.flush_interval, self.capacity = batch_size, flush_interval, capacity
        self.max_batch = max(self.batch_size, max_batch)
        self.close_timeout, self.max_backoff = close_timeout, max_backoff
        self._sink_factory = sink
        self._closed = False
        self._init_runtime()
        _live_handlers.add(self)
        self._start()

    # -- state that a forked child must rebuild --------------------------------------

    def _init_runtime(self) -> None:
        self._buffer: RecordBuffer[Snapshot] = RecordBuffer(self.capacity)
        self._sink: LogSink = self._sink_factory()
        self._wake = threading.Event()
        self._stop = threading.Event()  # only close() sets it: it may cut a backoff short
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self._shipper_ident: int | None = None
        self._closing = False
        self._in_flight: list[dict[str, Any]] = []
        self._taken = self._done = 0
        self._sent = self._duplicates = self._rejected = self._given_up = 0
        self._retries = self._errors = 0
        self._state = "starting"
        self._last_error: str | None = None
        self._last_rejection: str | None = None
        self._last_success: datetime | None = None
        self._complaints = RateLimitedStderr()  # fresh after fork: its clock is per process

    def count_drop(self, reason: str) -> None:
        """Counts a record dropped before it reached the buffer."""
        self._buffer.count_drop(reason)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="orchestrator-db-log", daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        self._sink.abandon()
        self._init_runtime()  # the thread did not survive the fork; start on first emit

    # -- the calling thread -----------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Snapshots the record into the buffer: no I/O, no encoding, no shared lock."""
        if self._closed or threading.get_ident() == self._shipper_ident:
            return
        snap = self.snapshot(record)
        if snap is None:
            return
        if self._buffer.push(snap, record.levelno) >= self.batch_size and not self._wake.is_set():
            self._wake.set()
        if self._thread is None:
            self._start()

    # -- the shipping thread ----------------------------------------------------------

    def _run(self) -> None:
        self._shipper_ident = threading.get_ident()
        self._probe()
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            closing = self._closing
            try:
                self._ship_available()
            except Exception as error:  # a bug or a surprise from a driver: never die
                self._mark_down(f"unexpected {type(error).__name__}: {error}")
                if not closing:
                    self._stop.wait(self.max_backoff)
            if closing:
                return

    def _probe(self) -> None:
        try:
            self._sink.check()
        except Exception as error:  # whatever the reason, the destination is not usable
            self._mark_down(str(error) or type(error).__name__)
        else:
            self._state = "up"

    def _ship_available(self) -> None:
        attempt = 0
        while True:
            with self._progress:
                if not self._in_flight:
                    # batch_size triggers a send; a backlog goes out in bigger sends, so
                    # one round trip per 50 records never caps the throughput.
                    snaps = self._buffer.take(self.max_batch)
                    if not snaps:
                        return
                    self._taken += len(snaps)
                    self._in_flight = [self._entry(s) for s in snaps]
            try:
                self._deliver(self._in_flight)
            except HubError as error:  # unreachable, busy, or not migrated yet: retry
                self._retries += 1
                self._mark_down(str(error))
                delay = min(self.max_backoff, 0.25 * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311
                hint = error.retry_after if isinstance(error, DatabaseUnavailable) else None
                if hint is not None:  # the server knows best; 5 min at most
                    delay = max(delay, min(hint, 300.0))
                attempt += 1
                if self._closing:
                    return  # close() gives up on what is left after its own deadline
                self._stop.wait(delay)
                continue
            attempt = 0
            with self._progress:
                self._done += len(self._in_flight)
                self._buffer.release(len(self._in_flight))
                self._in_flight = []
                self._progress.notify_all()

    def _entry(self, snap: Snapshot) -> dict[str, Any]:
        return to_entry(snap, self.source_type, self.source_id, self.worker_id)

    def _deliver(self, entries: list[dict[str, Any]]) -> None:
        """Sends entries; on refused input, halves until the bad entry is alone."""
        try:
            result = self._sink.send(entries)
        except InputRefused as error:
            if len(entries) == 1:
                self._reject(1, f"{error} (entry of {entries[0].get('logger_name')})")
                return
            middle = len(entries) // 2
            self._deliver(entries[:middle])
            self._deliver(entries[middle:])
            return
        if not result.success:
            self._reject(len(entries), result.error or "batch refused")
            return
        # Delivered = inserted now or found already stored (a retry after a lost reply).
        self._sent += result.inserted + result.duplicates
        self._duplicates += result.duplicates
        if result.rejected:
            first = result.rejected[0]
            self._reject(len(result.rejected), f"entry {first.index}: {first.reason}")
        if self._state != "up":
            if self._state == "down":
                self._complaints.say(f"database logging recovered ({self._sink.label})", force=True)
            self._state = "up"
        self._last_success = datetime.now(UTC)

    def _reject(self, count: int, reason: str) -> None:
        self._rejected += count
        self._last_rejection = reason
        self._complaints.say(f"database refused {count} log record(s): {reason}")

    def _mark_down(self, error: str) -> None:
        self._errors += 1
        self._last_error = error
        if self._state != "down":
            self._complaints.say(
                f"database logging is DOWN ({self._sink.label}): {error}; records are kept "
                f"in memory (up to {self.capacity}) and retried",
                force=True,
            )
        self._state = "down"

    # -- flush, close, stats ----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Sends what was buffered before this call; True if all of it was inserted.

        Waits at most ``timeout`` seconds (default ``close_timeout``). Records the
        database rejected, or that could not be sent in time, make it return False.
        """
        if self._thread is None or not self._thread.is_alive():
            return not self._buffer and not self._in_flight
        deadline = time.monotonic() + (self.close_timeout if timeout is None else timeout)
        with self._progress:
            target = self._taken + len(self._buffer)
            failures_before = self._rejected + self._given_up
        self._wake.set()
        with self._progress:
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)
        return self._rejected + self._given_up == failures_before

    def close(self, timeout: float | None = None) -> None:
        """Drains the buffer (at most ``timeout``, default ``close_timeout``) and stops.

        Idempotent. Whatever could not be delivered is reported in one stderr line.
        """
        if self._closed:
            return
        self._closed = True
        budget = self.close_timeout if timeout is None else timeout
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._closing = True
            self._stop.set()
            self._wake.set()
            thread.join(budget)
        left = len(self._buffer) + len(self._in_flight)
        self._given_up += left
        drops = self._buffer.drops()
        if left or drops:
            dropped = ", ".join(f"{reason}={n}" for reason, n in sorted(drops.items()))
            self._complaints.say(
                f"database logging closed with {left} record(s) undelivered"
                + (f"; dropped earlier: {dropped}" if dropped else "")
                + (f"; last error: {self._last_error}" if self._last_error and left else ""),
                force=True,
            )
        if thread is None or not thread.is_alive():
            self._sink.close()
        else:
            self._sink.abandon()  # the stuck thread still holds it
        self._state = "closed"
        _live_handlers.discard(self)
        super().close()

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and health checks (see the README for each key)."""
        return {
            "state": self._state,
            "destination": self._sink.label,
            "sent": self._sent,
            "duplicates": self._duplicates,
            "dropped": self._buffer.drops(),
            "rejected": self._rejected,
            "undelivered_at_close": self._given_up,
            "retries": self._retries,
            "errors": self._errors,
            "queue_depth": len(self._buffer) + len(self._in_flight),
            "last_error": self._last_error,
            "last_rejection": self._last_rejection,
            "last_success": self._last_success.isoformat() if self._last_success else None,
        }


def _reinit_in_child() -> None:
    for handler in list(_live_handlers):
        handler._after_fork_in_child()


def _close_all_at_exit() -> None:
    for handler in list(_live_handlers):
        handler.close()


def drain_before_later_exit_hooks() -> None:
    """Moves the exit drain after every exit hook registered so far, so it runs first
    (atexit runs hooks last-in, first-out). Call it after starting something whose own
    exit hook would take the database away, like the embedded server."""
    atexit.unregister(_close_all_at_exit)
    atexit.register(_close_all_at_exit)


os.register_at_fork(after_in_child=_reinit_in_child)
atexit.register(_close_all_at_exit)
