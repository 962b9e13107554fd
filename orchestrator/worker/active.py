"""A job this worker is running, and who may report its end.

Three threads can decide a job's fate: the job's own thread (it finished, or its
timeout stopped it), the heartbeat thread (its lease was lost: the database gave it to
someone else, or it was cancelled) and the shutdown path (grace over: stop and release
it). Exactly one of them may talk to the database about it, so the state moves once, under a lock:
``running`` → ``reporting`` (the job thread completes or fails it), ``lost`` (nobody
reports; the late result would be refused anyway) or ``releasing`` (shutdown releases it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from orchestrator.jobs.model import ClaimedJob
from orchestrator.worker.runners import Run


@dataclass
class ActiveJob:
    """A claimed job, its run, and the single owner of its final report."""

    job: ClaimedJob
    run: Run
    state: str = "running"
    timer: threading.Timer | None = None  # the job's timeout, when it has one
    timed_out: bool = False  # set by the timer: the run was stopped for its timeout
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def job_id(self) -> str:
        """The job's id as text (the task id of its log rows)."""
        return str(self.job.job_id)

    def take_over(self, new_state: str) -> bool:
        """Moves ``running`` → ``new_state``; False if another path already owns the job."""
        with self._lock:
            if self.state != "running":
                return False
            self.state = new_state
            return True
