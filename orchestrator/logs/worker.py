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
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import uuid_utils

from orchestrator.db.calls import CallExecutor
from orchestrator.logs import context
from orchestrator.logs.buffer import RecordBuffer
from orchestrator.logs.calls import HeartbeatResult, heartbeat_call
from orchestrator.logs.guard import RateLimitedStderr
from orchestrator.logs.snapshot import Snapshot, SnapshotHandler, to_entry

Entry = dict[str, Any]
_Source = tuple[str, str, str | None]  # (source_type, source_id, worker_id) of a handler
_Item = Entry | tuple[Snapshot, _Source]

_LEVELNOS = logging.getLevelNamesMapping()  # WARN and FATAL included, as the database takes them


class LogBuffer:
    """The worker's bounded log buffer, emptied by its heartbeat (the seed's name).

    It holds ready entries (from :meth:`add`) and logging snapshots (from the handler),
    and hands out entries. Snapshots keep ``emit`` as cheap as the orchestrator's (no id,
    no JSON on the caller); they become entries, ids included, once, when a heartbeat
    takes them. A failed heartbeat restores those very entries (:meth:`restore`): a resend
    after a lost reply carries the same ``(timestamp, id)`` and is counted as duplicates.

    Taken entries count against ``capacity`` until :meth:`confirm` or :meth:`restore`, so
    what a failed beat puts back always has room; only entries that were never taken
    from this buffer can overflow (counted as ``heartbeat_failed_overflow``). ``add`` and
    the handler never take a lock; heartbeats (the consumers) share one.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._records: RecordBuffer[_Item] = RecordBuffer(capacity)
        self.capacity = capacity  # queued and in flight together
        self._retry: deque[Entry] = deque()  # restored entries, served before _records
        self._sending = 0  # taken, neither confirmed nor restored
        self._lock = threading.Lock()

    def add(self, entry: Mapping[str, Any]) -> bool:
        """Queues a ready log entry (a copy); returns False if the drop policy refused it.

        An ``id`` and ``timestamp`` are given now if missing, so retries stay idempotent.
        """
        item = dict(entry)
        if not item.get("id"):
            item["id"] = str(uuid_utils.uuid7())
        if item.get("timestamp") is None:
            item["timestamp"] = time.time()
        level = str(item.get("log_level") or item.get("level") or "INFO").strip().upper()
        return self._records.offer(item, _LEVELNOS.get(level, logging.INFO))

    def _offer_snapshot(self, snap: Snapshot, levelno: int, source: _Source) -> bool:
        return self._records.offer((snap, source), levelno)

    def count_drop(self, reason: str, count: int = 1) -> None:
        """Counts ``count`` records lost for ``reason`` (shown by :meth:`stats`)."""
        self._records.count_drop(reason, count)

    def take(self, limit: int) -> list[Entry]:
        """Up to ``limit`` entries for a heartbeat, oldest (restored ones) first.

        Confirm them with :meth:`confirm` once delivered, or :meth:`restore` them.
        """
        with self._lock:
            taken: list[Entry] = []
            while self._retry and len(taken) < limit:
                taken.append(self._retry.popleft())
            for item in self._records.take(limit - len(taken)) if len(taken) < limit else ():
                try:
                    taken.append(item if isinstance(item, dict) else to_entry(item[0], *item[1]))
                except Exception:  # a bug: count it rather than lose the whole beat
                    self._records.release(1)
                    self._records.count_drop("entry_error")
            self._sending += len(taken)
            return taken

    def confirm(self, count: int) -> None:
        """Releases ``count`` taken entries: delivered, rejected by the database, or given up."""
        with self._lock:
            count = min(count, self._sending)
            self._sending -= count
            self._records.release(count)

    def restore(self, entries: Sequence[Entry]) -> int:
        """Puts a failed heartbeat's entries back at the front, in order; returns how many.

        The oldest are kept when they do not all fit; the rest are counted as dropped
        with reason ``heartbeat_failed_overflow``.
        """
        with self._lock:
            returning = min(len(entries), self._sending)  # their room is still reserved
            self._sending -= returning
            others = len(self._records) + self._records.in_flight - returning
            keep = max(0, min(len(entries), self.capacity - others))
            # In flight, for the RecordBuffer, is everything taken out of it: the entries
            # being sent and those waiting here to be resent.
            self._records.in_flight += keep - returning
            self._retry.extendleft(reversed(entries[:keep]))
            if keep < len(entries):
                self._records.count_drop("heartbeat_failed_overflow", len(entries) - keep)
            return keep

    def stats(self) -> dict[str, Any]:
        """Queued and in-flight counts and the drops by reason, for health checks."""
        counts = {"capacity": self.capacity, "queued": len(self), "in_flight": self._sending}
        return {**counts, "dropped": self._records.drops()}

    def __len__(self) -> int:
        return len(self._records) + len(self._retry)


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
        self._source: _Source = (source_type, worker_id, worker_id)

    def emit(self, record: logging.LogRecord) -> None:
        """Snapshots the record into the buffer: no I/O, no encoding, no shared lock."""
        snap = self.snapshot(record)
        if snap is not None:
            self.buffer._offer_snapshot(snap, record.levelno, self._source)

    def count_drop(self, reason: str) -> None:
        """Counts a record dropped before it reached the buffer."""
        self.buffer.count_drop(reason)

    def set_task_context(self, task_id: str | uuid.UUID | None) -> None:
        """Tags this thread's (or asyncio task's) records with ``task_id`` and this worker."""
        context.set_task_context(None if task_id is None else str(task_id), self.worker_id)

    def clear_task_context(self) -> None:
        """Ends the tagging started by :meth:`set_task_context`."""
        context.clear_task_context()


class WorkerHeartbeat:
    """A worker's heartbeat, carrying up to ``max_logs_per_beat`` buffered log entries.

    A beat that raises puts its entries back and re-raises (the caller's loop decides
    whether to retry or give up); so does, without raising, a beat whose log part the
    database could not store. Entries the database rejected are counted, not retried.
    Safe to call from several threads: beats are serialised.
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
        self._lock = threading.Lock()
        names = ("beats", "failures", "log_failures", "sent", "duplicates", "rejected")
        self._counts = dict.fromkeys(names, 0)
        self._last: dict[str, str | None] = dict.fromkeys(("error", "rejection", "success"))
        self._complaints = RateLimitedStderr()

    def beat(
        self,
        status: str = "idle",
        current_task_id: str | uuid.UUID | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> HeartbeatResult:
        """Reports the worker alive with ``status``; ships buffered logs along."""
        with self._lock:
            entries = self.buffer.take(self.max_logs_per_beat)
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
            if not logs.success:  # the heartbeat landed, its logs did not: keep them
                self.buffer.restore(entries)
                counts["log_failures"] += 1
                self._last["error"] = logs.error
                self._complaints.say(f"worker logs kept for the next heartbeat: {logs.error}")
                return result
            self.buffer.confirm(len(entries))
            counts["sent"] += logs.inserted + logs.duplicates
            counts["duplicates"] += logs.duplicates
            counts["rejected"] += len(logs.rejected)
            if logs.rejected:
                first = logs.rejected[0]
                reason = self._last["rejection"] = f"entry {first.index}: {first.reason}"
                self._complaints.say(f"database refused {len(logs.rejected)} log(s): {reason}")
            return result

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and health checks (``last_*`` are texts), the buffer's too."""
        last = {f"last_{key}": value for key, value in self._last.items()}
        return {**self._counts, **last, "buffer": self.buffer.stats()}
