"""Completions of many job threads, sent together: one call, one commit.

A worker running many short jobs spends most of its time on one round trip and one
commit per completion (each a WAL flush). Here a job thread hands its completion over
and is free at once; one thread sends whatever is waiting as one call, so the
completions that arrive while a call is in flight go together in the next (group
commit, as pgqueuer batches its acknowledgements). A lone completion goes out at once:
nothing waits for a batch to fill. What follows a batch's answer (verdicts, counts, log
lines, the jobs claimed in the same call) is ``send``'s to do, on this thread: a job
thread waiting for its verdict cost two thread switches per job and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from orchestrator.jobs.model import ClaimedJob

Completion = tuple[ClaimedJob, dict[str, Any]]
_log = logging.getLogger("orchestrator.worker")


class CompletionBatcher:
    """Sends completions in batches of up to ``max_batch`` through ``send``."""

    def __init__(self, send: Callable[[list[Completion]], None], max_batch: int = 100) -> None:
        self._send, self.max_batch = send, max_batch
        self._waiting: list[Completion] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="worker-reports", daemon=True)
        self._thread.start()

    def complete(self, job: ClaimedJob, result: dict[str, Any]) -> None:
        """Completes ``job`` with ``result`` in the next batch."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker's reports are closed")
            self._waiting.append((job, result))
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
            try:
                self._send(batch)
            except Exception:  # send handles its errors; a bug must not end the thread
                _log.exception("Reporting %d completion(s) failed", len(batch))

    def close(self) -> None:
        """Sends what is waiting, then stops the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=60)
