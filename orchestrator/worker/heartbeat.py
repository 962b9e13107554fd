"""The worker's pulse: one background thread beats, ships the logs, renews the leases.

Every ``interval`` seconds it calls ``func_worker_heartbeat_with_logs`` (the log buffer
rides along, see :mod:`orchestrator.logs.worker`) and then ``func_extend_job_leases``.
A running job whose id is missing from the renewed set has lost its lease: it was
reaped (this worker looked dead), cancelled, or expired while the database was away.
The job is stopped and its result will not be reported; another worker may already run
it. The thread has its own connection, so a long report on the main one never delays a
renewal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from orchestrator.logs.worker import LogBuffer, WorkerHeartbeat
from orchestrator.worker.active import ActiveJob
from orchestrator.worker.store import JobStore

_log = logging.getLogger("orchestrator.worker.heartbeat")


class Pulse:
    """Heartbeat + lease renewal on a background thread."""

    def __init__(
        self,
        store: JobStore,
        buffer: LogBuffer,
        active: Callable[[], list[ActiveJob]],
        *,
        interval: float,
        lease_seconds: int,
        status: Callable[[], str],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.store, self.active, self.status = store, active, status
        self.interval, self.lease_seconds = interval, lease_seconds
        self.metadata = metadata or {}
        self.heart = WorkerHeartbeat(store, store.worker_id, buffer)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-pulse", daemon=True)
        self.lost: list[str] = []

    def start(self) -> None:
        """Starts beating (the first beat is immediate)."""
        self._thread.start()

    def beat_once(self) -> None:
        """One heartbeat and one lease renewal; lost jobs are stopped."""
        jobs = self.active()
        running = [job for job in jobs if job.state == "running"]
        current = running[0].job_id if len(running) == 1 else None
        meta = {**self.metadata, "active_jobs": [job.job_id for job in running]}
        self.heart.beat(self.status(), current, meta)
        if not running:
            return
        lost = self.store.extend(self.lease_seconds, [job.job_id for job in running])
        for job in running:
            if job.job_id in lost and job.take_over("lost"):
                self.lost.append(job.job_id)
                _log.warning(
                    "Lost the lease of job %s (reaped, cancelled or expired); stopping it "
                    "and not reporting its result",
                    job.job_id,
                )
                threading.Thread(target=job.run.stop, daemon=True).start()

    def poke(self) -> None:
        """Beats and renews now instead of at the next interval (one of this worker's
        jobs was cancelled: the renewal reports it lost and the run is stopped)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat_once()
            except Exception as error:  # database away: the next beat tries again
                _log.warning("Heartbeat failed: %s", error)
            self._wake.wait(self.interval)
            self._wake.clear()

    def stop(self) -> None:
        """Stops the thread (the final flush is :meth:`flush`'s job)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 30)

    def flush(self, status: str = "stopped", attempts: int = 5) -> bool:
        """Final beats until the log buffer is empty; returns whether it emptied."""
        for _ in range(attempts):
            try:
                self.heart.beat(status, None, self.metadata)
            except Exception as error:
                _log.warning("Final heartbeat failed: %s", error)
                continue
            if len(self.heart.buffer) == 0:
                return True
        return len(self.heart.buffer) == 0
