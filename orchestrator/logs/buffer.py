"""The bounded buffer between the logging threads and the shipping thread.

Drop policy, so memory stays bounded during an outage and what matters survives a
flood: the last 20 % of the capacity is reserved for WARNING and above. Once the buffer
holds 80 % of its capacity, new DEBUG/INFO records are dropped (reason
``buffer_full``); WARNING and above are still taken until the buffer is full, then
dropped too (reason ``buffer_full_warning_plus``). Every drop is counted by reason and
never printed per record.

The calling thread only does ``len()`` and ``append()`` on a :class:`collections.deque`
(both atomic under the GIL) — no lock that the shipping thread could hold. With many
threads racing, the buffer may overshoot its capacity by at most one record per thread.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from typing import Generic, TypeVar

T = TypeVar("T")

RESERVED_FRACTION = 0.2


class RecordBuffer(Generic[T]):
    """A FIFO of items with a capacity, a reserve for WARNING+, and drop counters."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._low_limit = max(1, int(capacity * (1 - RESERVED_FRACTION)))
        self._items: deque[T] = deque()
        # Records taken out but not yet delivered (the shipper's batch in flight) still
        # occupy memory, so they count against the capacity.
        self.in_flight = 0
        self._drops: Counter[str] = Counter()
        self._drop_lock = threading.Lock()  # taken only when dropping, never by the shipper

    def offer(self, item: T, levelno: int) -> bool:
        """Appends ``item`` unless the policy drops it; returns whether it was kept."""
        return self.push(item, levelno) >= 0

    def push(self, item: T, levelno: int) -> int:
        """Like :meth:`offer`, but returns the number of items now held (in flight
        included), or -1 when the item was dropped: one call instead of offer-then-len
        on the logging hot path."""
        items = self._items
        size = len(items) + self.in_flight
        if size >= self._low_limit:
            if levelno < logging.WARNING:
                self.count_drop("buffer_full")
                return -1
            if size >= self.capacity:
                self.count_drop("buffer_full_warning_plus")
                return -1
        items.append(item)
        return size + 1

    def take(self, limit: int) -> list[T]:
        """Moves up to ``limit`` items from the front into flight (shipper thread only).

        Each item counts as in flight before it leaves the deque, so a caller never sees
        room that is not there. Call :meth:`release` once they are delivered.
        """
        items = self._items
        taken: list[T] = []
        while len(taken) < limit and items:
            self.in_flight += 1
            try:
                taken.append(items.popleft())
            except IndexError:  # cannot happen with one consumer; keep the count right
                self.in_flight -= 1
                break
        return taken

    def release(self, count: int) -> None:
        """Forgets ``count`` in-flight items: delivered, rejected or given up."""
        self.in_flight -= count

    def count_drop(self, reason: str, count: int = 1) -> None:
        """Counts ``count`` records dropped for ``reason``."""
        with self._drop_lock:
            self._drops[reason] += count

    def drops(self) -> dict[str, int]:
        """Records dropped so far, by reason."""
        with self._drop_lock:
            return dict(self._drops)

    def clear(self) -> int:
        """Empties the buffer (after fork, the child's copy); returns how many were held."""
        count = len(self._items)
        self._items.clear()
        return count

    def __len__(self) -> int:
        return len(self._items)
