"""The one shipping engine: records in, batches of entries out, every record accounted for.

Both ways logs leave a process use it: :class:`~orchestrator.logs.handler.SinkLogHandler`
(its own thread, a sink per batch) and the worker's heartbeat
(:class:`~orchestrator.logs.worker.WorkerHeartbeat`, logs riding each beat). What
either drives it with is only *when* to take a batch and *how* to send it; what
happens to a record is decided here, once:

* it waits in a :class:`~orchestrator.logs.buffer.BoundedBuffer` (records and bytes,
  a reserve for WARNING+, back-pressure while the sink keeps pace);
* it becomes an entry when a batch is taken (:func:`~orchestrator.logs.snapshot.to_entry`);
  a record that cannot (a bug, or a value no encoder survives) is dropped *alone*,
  counted as ``unencodable`` with its reason, and the rest of its batch ships;
* a batch that could not be sent is :meth:`ShippingQueue.restore`\\ d to the front with
  its ids, so a resend after a lost reply is counted as duplicates;
* what the database says of a sent batch (:meth:`ShippingQueue.settle`) is counted:
  stored, duplicates, rejected with the reason;
* ``settled`` counts every record that left, by any of these ways, so ``flush`` can
  wait for exactly the records buffered before it and say whether all were stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import uuid_utils

from orchestrator.logs.buffer import DEFAULT_MAX_BYTES, BoundedBuffer
from orchestrator.logs.calls import InsertResult
from orchestrator.logs.guard import RateLimitedStderr
from orchestrator.logs.snapshot import RECORD_OVERHEAD, Snapshot, to_entry

Entry = dict[str, Any]
Source = tuple[str, str, str | None]  # (source_type, source_id, worker_id) of a handler
Item = Entry | tuple[Snapshot, Source]

_LEVELNOS = logging.getLevelNamesMapping()  # WARN and FATAL included, as the database takes them


def entry_size(entry: Entry) -> int:
    """Estimated bytes of a ready entry (only its texts are measured)."""
    size = RECORD_OVERHEAD
    for value in entry.values():
        if type(value) is str:
            size += len(value)
    return size


class ShippingQueue:
    """Buffered records and the batches taken from them (see the module docstring).

    Producers (logging threads) never take the consumers' lock; consumers (the shipping
    thread, heartbeats) are serialised by it.
    """

    def __init__(
        self, capacity: int, max_bytes: int = DEFAULT_MAX_BYTES, max_block: float = 1.0
    ) -> None:
        self.buffer: BoundedBuffer[Item] = BoundedBuffer(capacity, max_bytes, max_block)
        self.capacity = capacity
        self._retry: deque[tuple[Entry, int]] = deque()  # restored, served first
        self._sending: deque[int] = deque()  # sizes of the taken entries, oldest first
        self._lock = threading.Lock()
        self.progress = threading.Condition()
        self.settled = 0  # records that left: stored, duplicate, rejected or dropped
        self.failed = 0  # of those, the ones not stored
        self.counts = dict.fromkeys(("sent", "duplicates", "rejected"), 0)
        self.last_rejection: str | None = None
        self.complaints = RateLimitedStderr()

    # -- producers --------------------------------------------------------------------

    def offer_snapshot(self, snap: Snapshot, size: int, levelno: int, source: Source) -> int:
        """Buffers a logging snapshot; the records held now, or -1 when dropped."""
        return self.buffer.push((snap, source), levelno, size)

    def add(self, entry: Entry) -> bool:
        """Buffers a ready entry (a copy); False if the drop policy refused it. An ``id``
        and ``timestamp`` are given now if missing, so retries stay idempotent."""
        item = dict(entry)
        if not item.get("id"):
            item["id"] = str(uuid_utils.uuid7())
        if item.get("timestamp") is None:
            item["timestamp"] = time.time()
        level = str(item.get("log_level") or item.get("level") or "INFO").strip().upper()
        return self.buffer.push(item, _LEVELNOS.get(level, logging.INFO), entry_size(item)) >= 0

    def count_drop(self, reason: str, count: int = 1) -> None:
        """Counts ``count`` records lost for ``reason`` before they were buffered."""
        self.buffer.count_drop(reason, count)

    # -- consumers --------------------------------------------------------------------

    def take(self, limit: int) -> list[Entry]:
        """Up to ``limit`` entries, restored ones first; :meth:`confirm` or
        :meth:`restore` them. Records that cannot become entries are dropped here,
        alone, and counted as ``unencodable``."""
        with self._lock:
            taken: list[Entry] = []
            sizes: list[int] = []
            while self._retry and len(taken) < limit:
                entry, size = self._retry.popleft()
                taken.append(entry)
                sizes.append(size)
            poisoned = poisoned_bytes = 0
            for item, size in self.buffer.take(limit - len(taken)):
                try:
                    entry = item if isinstance(item, dict) else to_entry(item[0], *item[1])
                except Exception as error:
                    poisoned += 1
                    poisoned_bytes += size
                    name = "entry" if isinstance(item, dict) else item[0][2]
                    self.complaints.say(
                        f"dropped a log record of {name} that cannot be encoded: "
                        f"{type(error).__name__}: {error}"[:300]
                    )
                    continue
                taken.append(entry)
                sizes.append(size)
            self._sending.extend(sizes)
        if poisoned:
            self.buffer.count_drop("unencodable", poisoned)
            self._leave(poisoned, poisoned_bytes, failed=poisoned)
        return taken

    def confirm(self, count: int) -> None:
        """Releases ``count`` taken entries: delivered, rejected, or given up."""
        with self._lock:
            count = min(count, len(self._sending))
            nbytes = sum(self._sending.popleft() for _ in range(count))
        self._leave(count, nbytes)

    def restore(self, entries: Sequence[Entry]) -> int:
        """Puts a failed batch back at the front, in order; returns how many were kept.

        Entries taken from this queue always have room (they are still counted); others
        are kept while there is room, the oldest first, and the rest are counted as
        ``heartbeat_failed_overflow``."""
        with self._lock:
            returning = min(len(entries), len(self._sending))
            sizes = [self._sending.popleft() for _ in range(returning)]
            room = max(0, self.capacity - self.buffer.held)
            foreign = [entry_size(e) for e in entries[returning : returning + room]]
            if foreign:
                self.buffer.reserve(len(foreign), sum(foreign))
            kept = list(zip(entries, sizes + foreign, strict=False))
            self._retry.extendleft(reversed(kept))
        if len(kept) < len(entries):
            self.buffer.count_drop("heartbeat_failed_overflow", len(entries) - len(kept))
        return len(kept)

    def settle(self, entries: Sequence[Entry], result: InsertResult) -> None:
        """Counts what the database did with a sent batch and releases it."""
        counts = self.counts
        if not result.success:
            self.reject(len(entries), result.error or "batch refused")
        else:
            counts["sent"] += result.inserted + result.duplicates
            counts["duplicates"] += result.duplicates
            if result.rejected:
                first = result.rejected[0]
                self.reject(len(result.rejected), f"entry {first.index}: {first.reason}")
        self.confirm(len(entries))

    def reject(self, count: int, reason: str) -> None:
        """Counts ``count`` records the database refused, for ``reason``."""
        self.counts["rejected"] += count
        self.last_rejection = reason
        with self.progress:
            self.failed += count
        self.complaints.say(f"database refused {count} log record(s): {reason}")

    def give_up(self) -> int:
        """Drops everything still held (close, after its deadline); returns how many."""
        with self._lock:
            left = list(self._retry)
            self._retry.clear()
            left_sizes = [size for _, size in left] + list(self._sending)
            self._sending.clear()
            queued = self.buffer.take(self.buffer.held)
            count = len(left_sizes) + len(queued)
            nbytes = sum(left_sizes) + sum(size for _, size in queued)
        self._leave(count, nbytes, failed=count)
        return count

    def _leave(self, count: int, nbytes: int, failed: int = 0) -> None:
        if not count:
            return
        self.buffer.release(count, nbytes)
        with self.progress:
            self.settled += count
            self.failed += failed
            self.progress.notify_all()

    # -- flush and stats --------------------------------------------------------------

    def mark(self) -> tuple[int, int]:
        """(settled count to wait for, failures so far): what :meth:`wait` needs to wait
        for exactly the records held now."""
        with self.progress:
            return self.settled + self.buffer.held, self.failed

    def wait(self, target: int, deadline: float) -> bool:
        """Waits until ``target`` records have settled or ``deadline`` (monotonic) passes."""
        with self.progress:
            while self.settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.progress.wait(remaining)
        return True

    @property
    def in_flight(self) -> int:
        """Entries taken and neither confirmed nor restored."""
        return len(self._sending)

    def stats(self) -> dict[str, Any]:
        """Queued and in-flight counts, held bytes and the drops by reason."""
        return {
            "capacity": self.capacity,
            "queued": len(self),
            "in_flight": self.in_flight,
            "bytes": self.buffer.held_bytes,
            "dropped": self.buffer.drops(),
        }

    def __len__(self) -> int:
        return len(self.buffer) + len(self._retry)
