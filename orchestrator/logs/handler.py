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
import sys
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from orchestrator.errors import DatabaseUnavailable, HubError, InputRefused
from orchestrator.logs.buffer import DEFAULT_MAX_BYTES
from orchestrator.logs.shipping import ShippingQueue, Source
from orchestrator.logs.sinks import LogSink
from orchestrator.logs.snapshot import SnapshotHandler

_live_handlers: weakref.WeakSet[SinkLogHandler] = weakref.WeakSet()

SinkFactory = Callable[[], LogSink]


class SinkLogHandler(SnapshotHandler):
    """A ``logging.Handler`` that batches records into the hub's ``system_logs`` table.

    ``sink`` is a zero-argument factory of a :class:`~orchestrator.logs.sinks.LogSink`
    (a factory, because a forked child needs a connection of its own). A batch goes out
    when ``batch_size`` records wait, or every ``flush_interval`` seconds; at most
    ``capacity`` records and ``max_bytes`` bytes wait in memory; while the database
    keeps pace a caller waits at most ``max_block`` seconds for room instead of losing
    its record (:mod:`~orchestrator.logs.buffer`). A send unanswered for
    ``stall_after`` seconds makes ``stats()["state"]`` say ``down``.
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
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_batch: int = 1000,
        max_block: float = 1.0,
        close_timeout: float = 5.0,
        max_backoff: float = 30.0,
        stall_after: float = 10.0,
    ) -> None:
        super().__init__(level)
        self.source_type, self.source_id, self.worker_id = source_type, source_id, worker_id
        self.batch_size, self.flush_interval, self.capacity = batch_size, flush_interval, capacity
        self.max_bytes, self.max_block, self.stall_after = max_bytes, max_block, stall_after
        self.max_batch = max(self.batch_size, max_batch)
        self.close_timeout, self.max_backoff = close_timeout, max_backoff
        self._source: Source = (source_type, source_id, worker_id)
        self._sink_factory = sink
        self._closed = False
        self._init_runtime()
        _live_handlers.add(self)
        self._start()

    # -- state that a forked child must rebuild --------------------------------------

    def _init_runtime(self) -> None:
        self._queue = ShippingQueue(self.capacity, self.max_bytes, self.max_block)
        self._sink: LogSink = self._sink_factory()
        self._wake = threading.Event()
        self._stop = threading.Event()  # only close() sets it: it may cut a backoff short
        self._thread: threading.Thread | None = None
        self._shipper_ident: int | None = None
        self._closing = False
        self._parts: list[list[dict[str, Any]]] = []  # the batch in hand, split if refused
        self._send_started: float | None = None
        self._given_up = self._retries = self._errors = 0
        self._state = "starting"
        self._last_error: str | None = None
        self._last_success: datetime | None = None
        self._complaints = self._queue.complaints  # fresh after fork: its clock is per process

    def count_drop(self, reason: str) -> None:
        """Counts a record dropped before it reached the buffer."""
        self._queue.count_drop(reason)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="orchestrator-db-log", daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        self._sink.abandon()
        self._init_runtime()  # the thread did not survive the fork; start on first emit

    # -- the calling thread -----------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Snapshots the record into the buffer: no I/O, no encoding."""
        if self._closed or threading.get_ident() == self._shipper_ident:
            return
        taken = self.snapshot(record)
        if taken is None:
            return
        held = self._queue.offer_snapshot(taken[0], taken[1], record.levelno, self._source)
        if held >= self.batch_size and not self._wake.is_set():
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
        self._send_started = time.monotonic()
        try:
            self._sink.check()
        except Exception as error:  # whatever the reason, the destination is not usable
            self._mark_down(str(error) or type(error).__name__)
        else:
            self._mark_up()
        finally:
            self._send_started = None

    def _ship_available(self) -> None:
        attempt = 0
        while True:
            if not self._parts:
                # batch_size triggers a send; a backlog goes out in bigger sends, so
                # one round trip per 50 records never caps the throughput.
                entries = self._queue.take(self.max_batch)
                if not entries:
                    return
                self._parts = [entries]
            try:
                self._deliver_parts()
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

    def _deliver_parts(self) -> None:
        """Sends the batch in hand; a part the database refuses as input is halved
        until the bad entry stands alone and is counted as rejected."""
        parts = self._parts
        while parts:
            part = parts[0]
            self._send_started = time.monotonic()
            try:
                result = self._sink.send(part)
            except InputRefused as error:
                if len(part) == 1:
                    parts.pop(0)
                    self._queue.reject(1, f"{error} (entry of {part[0].get('logger_name')})")
                    self._queue.confirm(1)
                    continue
                middle = len(part) // 2
                parts[0:1] = [part[:middle], part[middle:]]
                continue
            finally:
                self._send_started = None
            parts.pop(0)
            self._queue.settle(part, result)
            self._mark_up()

    def _mark_up(self) -> None:
        if self._state != "up":
            if self._state == "down" and not self._closed:
                self._complaints.say(f"database logging recovered ({self._sink.label})", force=True)
            self._state = "up"
        self._last_success = datetime.now(UTC)
        if not self._closed:
            self._queue.buffer.set_healthy(True)

    def _mark_down(self, error: str) -> None:
        self._errors += 1
        self._last_error = error
        self._queue.buffer.set_healthy(False)
        if self._closed:
            return  # close() said its last word; a stuck send ending late stays quiet
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

        Waits at most ``timeout`` seconds (default ``close_timeout``); returns at once
        once the handler is closed (``logging.shutdown`` flushes closed handlers).
        Records the database rejected, that could not be encoded, or that could not
        be sent in time make it return False.
        """
        queue = self._queue
        if self._closed or self._thread is None or not self._thread.is_alive():
            return queue.buffer.held == 0
        deadline = time.monotonic() + (self.close_timeout if timeout is None else timeout)
        target, failures_before = queue.mark()
        self._wake.set()
        return queue.wait(target, deadline) and queue.failed == failures_before

    def close(self, timeout: float | None = None) -> None:
        """Drains the buffer (at most ``timeout``, default ``close_timeout``) and stops.

        Idempotent. Whatever could not be delivered is reported in one stderr line.
        """
        if self._closed:
            return
        self._closed = True
        budget = self.close_timeout if timeout is None else timeout
        thread = self._thread
        self._queue.buffer.set_healthy(False)  # no caller waits for room any more
        if thread is not None and thread.is_alive():
            self._closing = True
            self._stop.set()
            self._wake.set()
            thread.join(budget)
        left = self._queue.give_up()
        self._given_up += left
        drops = self._queue.buffer.drops()
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

    def _current_state(self) -> tuple[str, str | None]:
        started = self._send_started
        if self._state in ("up", "starting") and started is not None:
            waited = time.monotonic() - started
            if waited > self.stall_after:
                return "down", f"no answer from {self._sink.label} for {waited:.0f} s"
        return self._state, self._last_error

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and health checks (see the README for each key)."""
        queue = self._queue
        state, last_error = self._current_state()
        return {
            "state": state,
            "destination": self._sink.label,
            "sent": queue.counts["sent"],
            "duplicates": queue.counts["duplicates"],
            "dropped": queue.buffer.drops(),
            "rejected": queue.counts["rejected"],
            "undelivered_at_close": self._given_up,
            "retries": self._retries,
            "errors": self._errors,
            "queue_depth": queue.buffer.held,
            "queue_bytes": queue.buffer.held_bytes,
            "last_error": last_error,
            "last_rejection": queue.last_rejection,
            "last_success": self._last_success.isoformat() if self._last_success else None,
        }


def _reinit_in_child() -> None:
    handlers = list(_live_handlers)
    for handler in handlers:
        handler._after_fork_in_child()
    # A multiprocessing child (fork start: Process, Pool, ProcessPoolExecutor) ends in
    # os._exit, which skips atexit, but runs multiprocessing's exit finalizers first.
    # Its bootstrap clears the finalizers it inherited, then runs the after-fork hooks:
    # so the finalizer is registered from one of those.
    mp_util = sys.modules.get("multiprocessing.util")
    if handlers and mp_util is not None:
        mp_util.register_after_fork(handlers[0], _drain_at_multiprocessing_exit)


def _drain_at_multiprocessing_exit(_handler: object) -> None:
    mp_util = sys.modules["multiprocessing.util"]
    mp_util.Finalize(None, _close_all_at_exit, exitpriority=100)


def _close_all_at_exit() -> None:
    """Closes every live handler within one ``close_timeout`` for all of them."""
    handlers = list(_live_handlers)
    if not handlers:
        return
    deadline = time.monotonic() + max(h.close_timeout for h in handlers)
    for handler in handlers:
        handler._closing = True  # stop backing off: every one drains from now on
        handler._stop.set()
        handler._wake.set()
    for handler in handlers:
        handler.close(timeout=max(0.0, deadline - time.monotonic()))


def drain_before_later_exit_hooks() -> None:
    """Moves the exit drain after every exit hook registered so far, so it runs first
    (atexit runs hooks last-in, first-out). Call it after starting something whose own
    exit hook would take the database away, like the embedded server."""
    atexit.unregister(_close_all_at_exit)
    atexit.register(_close_all_at_exit)


os.register_at_fork(after_in_child=_reinit_in_child)
atexit.register(_close_all_at_exit)
