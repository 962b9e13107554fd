"""Completions of many job threads, sent together: one call, one commit.

A worker running many short jobs spends most of its time on one round trip and one
commit per completion (each a WAL flush). Here a job thread hands its completion over
and waits for its verdict; one thread sends whatever is waiting as one
``func_complete_jobs`` call, so the completions that arrive while a call is in flight
go together in the next (group commit, as pgqueuer batches its acknowledgements). A
lone completion goes out at once: nothing waits for a batch to fill.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from orchestrator.jobs.model import ClaimedJob, Verdict

Completion = tuple[ClaimedJob, dict[str, Any]]


class CompletionBatcher:
    """Sends completions in batches of up to ``max_batch`` through ``send``."""

    def __init__(
        self, send: Callable[[list[Completion]], Sequence[Verdict]], max_batch: int = 100
    ) -> None:
        self._send, self.max_batch = send, max_batch
        self._waiting: list[tuple[Completion, Future[Verdict]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="worker-reports", daemon=True)
        self._thread.start()

    def complete(self, job: ClaimedJob, result: dict[str, Any]) -> Verdict:
        """Completes ``job`` with ``result`` in the next batch; its verdict (or the error
        the batch's call raised)."""
        future: Future[Verdict] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker's reports are closed")
            self._waiting.append(((job, result), future))
            self._cond.notify()
        return future.result()

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
                verdicts = self._send([completion for completion, _ in batch])
            except BaseException as error:  # each waiting thread gets the error
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), verdict in zip(batch, verdicts, strict=True):
                future.set_result(verdict)

    def close(self) -> None:
        """Sends what is waiting, then stops the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=60)
