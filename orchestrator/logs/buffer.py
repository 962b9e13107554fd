"""The bounded buffer between the logging threads and the shipping side.

Bounded twice: in records (``capacity``, ``DB_LOG_BUFFER_SIZE``) and in bytes
(``max_bytes``, ``DB_LOG_BUFFER_BYTES``: each record's estimated size, see
:func:`~orchestrator.logs.snapshot.take_snapshot`). Records taken out but not yet
settled (the batch in flight, a failed batch waiting to be resent) still occupy memory,
so they count against both bounds until :meth:`BoundedBuffer.release`.

Drop policy, so memory stays bounded during an outage and what matters survives a
flood: the last 20 % of either bound is reserved for WARNING and above. Beyond 80 %,
new DEBUG/INFO records are refused (reason ``buffer_full``); WARNING and above are
taken until a bound is reached, then refused too (``buffer_full_warning_plus``).

Back-pressure instead of drops while the destination keeps pace: when the shipper
says the sink is healthy (:attr:`BoundedBuffer.healthy`), a record the policy would
refuse waits for room instead, at most ``max_block`` seconds; a wait that times out
turns the waiting off until the shipper delivers again, so a slow database costs each
caller at most one such wait, then drops as before. A burst from a healthy process is
slowed to the database's pace rather than lost; an outage is not felt by the caller.

The calling thread holds the lock only to check the bounds, append and add two
integers; the shipper holds it only to move items in or out. Every drop is counted by
reason and never printed per record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from typing import Generic, TypeVar

T = TypeVar("T")

RESERVED_FRACTION = 0.2
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class BoundedBuffer(Generic[T]):
    """A FIFO of items bounded in count and bytes, with a reserve for WARNING+."""

    def __init__(
        self, capacity: int, max_bytes: int = DEFAULT_MAX_BYTES, max_block: float = 1.0
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if max_bytes < 1024:
            raise ValueError(f"max_bytes must be at least 1024, got {max_bytes}")
        self.capacity, self.max_bytes, self.max_block = capacity, max_bytes, max_block
        self._low_count = max(1, int(capacity * (1 - RESERVED_FRACTION)))
        self._low_bytes = int(max_bytes * (1 - RESERVED_FRACTION))
        self._items: deque[tuple[T, int]] = deque()
        self.held = 0  # queued + taken but not released, in records
        self.held_bytes = 0  # the same in bytes
        self.healthy = False  # set by the shipper: waiting for room is worth it
        self._waiters = 0
        self._lock = threading.Lock()  # entered as a C-level context manager: cheap
        self._room = threading.Condition(self._lock)  # waits on the same lock
        self._drops: Counter[str] = Counter()

    def push(self, item: T, levelno: int, size: int) -> int:
        """Appends ``item`` unless the policy refuses it; returns the number of records
        now held, or -1 when it was dropped (counted)."""
        with self._lock:
            count, nbytes = self.held, self.held_bytes + size
            if count >= self._low_count or nbytes > self._low_bytes:
                warning_plus = levelno >= logging.WARNING
                over = not warning_plus or count >= self.capacity or nbytes > self.max_bytes
                if over and not self._wait_for_room(warning_plus, size):
                    reason = "buffer_full_warning_plus" if warning_plus else "buffer_full"
                    self._drops[reason] += 1
                    return -1
            self._items.append((item, size))
            self.held += 1
            self.held_bytes += size
            return self.held

    def _wait_for_room(self, warning_plus: bool, size: int) -> bool:
        """Waits (lock held by the caller) while the sink is healthy; False on timeout."""
        if not self.healthy:
            return False
        deadline = time.monotonic() + self.max_block
        count_limit = self.capacity if warning_plus else self._low_count
        bytes_limit = self.max_bytes if warning_plus else self._low_bytes
        self._waiters += 1
        try:
            while self.held >= count_limit or self.held_bytes + size > bytes_limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.healthy:
                    self.healthy = False  # slow beyond the bound: drop until it delivers
                    return False
                self._room.wait(remaining)
            return True
        finally:
            self._waiters -= 1

    def take(self, limit: int) -> list[tuple[T, int]]:
        """Moves up to ``limit`` (item, size) pairs from the front into flight; they stay
        counted until :meth:`release`."""
        with self._room:
            items = self._items
            return [items.popleft() for _ in range(min(limit, len(items)))]

    def reserve(self, count: int, nbytes: int) -> None:
        """Counts ``count`` items held outside the deque (restored from elsewhere)."""
        with self._room:
            self.held += count
            self.held_bytes += nbytes

    def release(self, count: int, nbytes: int) -> None:
        """Forgets ``count`` taken items of ``nbytes``: delivered, rejected or given up."""
        with self._room:
            self.held -= count
            self.held_bytes -= nbytes
            if self._waiters:
                self._room.notify_all()

    def set_healthy(self, healthy: bool) -> None:
        """The shipper's word on the sink; waiting callers give up at once when False."""
        with self._room:
            self.healthy = healthy
            if self._waiters:
                self._room.notify_all()

    def count_drop(self, reason: str, count: int = 1) -> None:
        """Counts ``count`` records dropped for ``reason``."""
        with self._room:
            self._drops[reason] += count

    def drops(self) -> dict[str, int]:
        """Records dropped so far, by reason."""
        with self._room:
            return dict(self._drops)

    def __len__(self) -> int:
        return len(self._items)
