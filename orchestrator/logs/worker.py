"""The worker side of the hub: logs wait in memory and ride the worker's heartbeat.

A worker calls ``func_worker_heartbeat_with_logs`` every few seconds anyway, so its logs
travel with it: no extra round trip, no shipping thread. Where the seed's worker failed:
its heartbeat read, changed and wrote back its row (lost updates) → one upsert in the
database; logs riding a failed heartbeat were lost → :meth:`WorkerHeartbeat.beat` puts
them back at the front of the buffer, ids unchanged, so a resend after a lost reply
counts as duplicates; its ``LogBuffer`` dropped what its own auto-flush returned → no
auto-flush, a bounded buffer (20 % kept for WARNING+, drops counted) the beat empties.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from orchestrator.db.calls import CallExecutor
from orchestrator.logs import context
from orchestrator.logs.buffer import DEFAULT_MAX_BYTES
from orchestrator.logs.calls import HeartbeatResult, heartbeat_call
from orchestrator.logs.guard import RateLimitedStderr
from orchestrator.logs.shipping import Entry, ShippingQueue, Source
from orchestrator.logs.snapshot import SnapshotHandler


class LogBuffer(ShippingQueue):
    """The worker's bounded log buffer, emptied by its heartbeat (the seed's name).

    The same :class:`~orchestrator.logs.shipping.ShippingQueue` the orchestrator's
    handler ships from, so both follow one policy: ready entries (:meth:`add`) and
    logging snapshots wait bounded in records and bytes; a record that cannot be
    encoded is dropped alone when a beat takes it; a failed beat restores its entries,
    ids unchanged, so a resend after a lost reply counts as duplicates.
    """

    def __init__(
        self,
        capacity: int = 10_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        # No back-pressure: a worker's logs leave only when it beats, every few
        # seconds, so a caller waiting for room would wait for a beat.
        super().__init__(capacity, max_bytes, max_block=0.0)


class WorkerDatabaseLogHandler(SnapshotHandler):
    """Puts a worker's log records into its :class:`LogBuffer` (the seed's name).

    It never ships: the worker's :class:`WorkerHeartbeat` does. So ``emit`` does no I/O
    and takes no lock a heartbeat could hold, exactly like the orchestrator's handler.
    """

    def __init__(
        self,
        worker_id: str,
        buffer: LogBuffer,
        level: int | str = logging.INFO,
        *,
        source_type: str = "worker",
    ) -> None:
        super().__init__(level)
        self.worker_id, self.buffer, self.source_type = worker_id, buffer, source_type
        self._source: Source = (source_type, worker_id, worker_id)

    def emit(self, record: logging.LogRecord) -> None:
        """Snapshots the record into the buffer: no I/O, no encoding."""
        taken = self.snapshot(record)
        if taken is not None:
            self.buffer.offer_snapshot(taken[0], taken[1], record.levelno, self._source)

    def count_drop(self, reason: str) -> None:
        """Counts a record dropped before it reached the buffer."""
        self.buffer.count_drop(reason)

    def set_task_context(self, task_id: str | uuid.UUID | None) -> None:
        """Tags this thread's (or asyncio task's) records with ``task_id`` and this worker."""
        context.set_task_context(None if task_id is None else str(task_id), self.worker_id)

    def clear_task_context(self) -> None:
        """Ends the tagging started by :meth:`set_task_context`."""
        context.clear_task_context()


# Beats an entry that fails its log part alone is sent before it is given up as
# rejected: a passing failure (a lock timeout) gets more than one chance.
ISOLATED_ATTEMPTS = 3


class WorkerHeartbeat:
    """A worker's heartbeat, carrying up to ``max_logs_per_beat`` buffered log entries.

    A beat that raises puts its entries back and re-raises (the caller's loop decides
    whether to retry or give up); so does, without raising, a beat whose log part the
    database could not store. Entries the database rejected are counted, not retried.
    A log part that keeps failing is halved beat after beat, as the handler halves a
    refused batch, until the entry that fails it travels alone; after
    ``ISOLATED_ATTEMPTS`` beats that one is counted as rejected with the database's
    reason and the beats go on. Safe to call from several
    threads: beats are serialised.
    """

    def __init__(
        self,
        executor: CallExecutor,
        worker_id: str,
        buffer: LogBuffer,
        *,
        max_logs_per_beat: int = 500,
    ) -> None:
        if not 0 <= max_logs_per_beat <= 10_000:
            raise ValueError(f"max_logs_per_beat must be 0 to 10000, got {max_logs_per_beat}")
        self.executor, self.worker_id, self.buffer = executor, worker_id, buffer
        self.max_logs_per_beat = max_logs_per_beat
        self._limit = max_logs_per_beat  # halved while the log part keeps failing
        self._alone_failures = 0
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("beats", "failures", "log_failures"), 0)
        self._last: dict[str, str | None] = dict.fromkeys(("error", "success"))
        self._complaints = RateLimitedStderr()

    def beat(
        self,
        status: str = "idle",
        current_task_id: str | uuid.UUID | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> HeartbeatResult:
        """Reports the worker alive with ``status``; ships buffered logs along."""
        with self._lock:
            entries: list[Entry] = self.buffer.take(self._limit)
            try:
                call = heartbeat_call(self.worker_id, status, current_task_id, metadata, entries)
                result = self.executor.run(call)
            except BaseException as error:
                self.buffer.restore(entries)
                self._counts["failures"] += 1
                self._last["error"] = f"{type(error).__name__}: {error}".strip()
                raise
            logs, counts = result.logs, self._counts
            counts["beats"] += 1
            self._last["success"] = datetime.now(UTC).isoformat()
            if not logs.success:  # the heartbeat landed, its logs did not
                counts["log_failures"] += 1
                self._last["error"] = logs.error
                alone = len(entries) == 1 and self._limit == 1
                self._alone_failures = self._alone_failures + 1 if alone else 0
                if self._alone_failures >= ISOLATED_ATTEMPTS:  # it is this entry
                    self.buffer.settle(entries, logs)
                    self._limit, self._alone_failures = self.max_logs_per_beat, 0
                else:
                    self.buffer.restore(entries)
                    self._limit = max(1, min(self._limit, len(entries)) // 2)
                    self._complaints.say(f"worker logs kept for the next heartbeat: {logs.error}")
                return result
            self._limit, self._alone_failures = self.max_logs_per_beat, 0
            self.buffer.settle(entries, logs)
            return result

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and health checks (``last_*`` are texts), the buffer's too."""
        queue = self.buffer
        last = {f"last_{key}": value for key, value in self._last.items()}
        last["last_rejection"] = queue.last_rejection
        return {**self._counts, **queue.counts, **last, "buffer": queue.stats()}
