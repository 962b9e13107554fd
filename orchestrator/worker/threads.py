"""The worker's job threads: ``concurrency`` daemon threads, started once and reused.

Starting a thread per job cost about a quarter of a millisecond of the worker's CPU per
job, the largest share after logging, for jobs that run in a millisecond. The threads
are daemon threads (unlike ``concurrent.futures``' pool, whose threads the interpreter
waits for at exit): a Python callable that never returns must not keep a stopping
worker alive. The runtime never hands over more jobs than it has free slots, so every
job finds a thread at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_Task = tuple[Callable[..., None], tuple[Any, ...]] | None


class JobThreads:
    """``size`` daemon threads that run what :meth:`submit` gives them, in order."""

    def __init__(self, size: int, name: str = "job") -> None:
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, function: Callable[..., None], *args: Any) -> None:
        """Runs ``function(*args)`` on the next free thread."""
        self._tasks.put((function, args))

    def _serve(self) -> None:
        while (task := self._tasks.get()) is not None:
            function, args = task
            function(*args)

    def close(self) -> None:
        """Lets idle threads end (a busy one ends after its job; none is waited for)."""
        for _ in self._threads:
            self._tasks.put(None)
