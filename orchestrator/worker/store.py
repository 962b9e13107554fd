"""The worker's view of the job store: the contract's calls, on a connection that heals.

The rules live in SQL (``func_claim_jobs``, ``func_extend_job_leases``,
``func_complete_job``, ``func_fail_job``, ``func_release_job``); the call values come
from :mod:`orchestrator.jobs.calls`. This class only runs them, serialised (job threads
report through one connection), and reconnects after the connection broke, so a
database restart costs the worker a failed call, not its life.

The calls go through any executor a :class:`WorkerDatabase` opens: psycopg on a
PostgreSQL URL (the embedded server, PgBouncer, Supavisor), or Supabase REST, the only
door a GPU box may have (seed 004's workers heartbeat through supabase-py). REST has
no ``LISTEN``, so a worker on it polls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from orchestrator.db.calls import Call, CallExecutor
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.db.target import describe_url
from orchestrator.jobs import calls as job_calls
from orchestrator.jobs.errors import job_errors
from orchestrator.jobs.model import ClaimedJob
from orchestrator.jobs.model import Outcome as Verdict

T = TypeVar("T")


class ReusableExecutor(CallExecutor, Protocol):
    """An executor that says when it must be replaced (a lost connection)."""

    @property
    def broken(self) -> bool: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class WorkerDatabase:
    """Where a worker's calls go: how to open an executor, and where to ``LISTEN``
    (``None``: no ``LISTEN`` there, the worker polls)."""

    label: str
    open: Callable[[], ReusableExecutor]
    listen_url: str | None = None

    @classmethod
    def postgres(cls, url: str, label: str | None = None) -> WorkerDatabase:
        """psycopg on ``url``; ``LISTEN`` on the same URL unless the worker polls."""
        return cls(label or describe_url(url), lambda: PsycopgExecutor.connect(url), url)

    @classmethod
    def supabase_rest(cls, url: str, key: str) -> WorkerDatabase:
        """supabase-py ``rpc`` on the project's REST gateway; polling only."""

        def open_rest() -> ReusableExecutor:
            from orchestrator.db.supabase import SupabaseExecutor

            return SupabaseExecutor(url, key)

        return cls(f"Supabase REST at {url}", open_rest)


class JobStore:
    """Runs job calls for one worker over one executor, replaced when it breaks."""

    def __init__(self, database: WorkerDatabase, worker_id: str, provider: str = "local") -> None:
        self.database, self.worker_id, self.provider = database, worker_id, provider
        self._executor: ReusableExecutor | None = None
        self._lock = threading.Lock()

    def run(self, call: Call[T]) -> T:
        """Executes ``call``; a broken connection is replaced on the next call."""
        with self._lock:
            executor = self._executor
            if executor is None or executor.broken:
                if executor is not None:
                    executor.close()
                executor = self._executor = self.database.open()
            with job_errors():  # a refusal is one clear line, not a driver traceback
                return executor.run(call)

    def claim(
        self, max_jobs: int, lease_seconds: int, job_types: list[str] | None = None
    ) -> list[ClaimedJob]:
        """Up to ``max_jobs`` jobs, leased to this worker for ``lease_seconds``."""
        call = job_calls.claim_jobs(
            self.worker_id,
            max_jobs=max_jobs,
            lease_seconds=lease_seconds,
            provider=self.provider,
            job_types=job_types,
        )
        return list(self.run(call).jobs)

    def extend(self, lease_seconds: int, job_ids: list[str]) -> set[str]:
        """Renews the leases of ``job_ids``; returns those this worker no longer holds."""
        call = job_calls.extend_job_leases(self.worker_id, lease_seconds, job_ids)
        return set(self.run(call).lost)

    def complete(self, job: ClaimedJob, result: dict[str, Any]) -> Verdict:
        """Reports success; refused when ``job.lease_token`` is no longer current."""
        return self.run(job_calls.complete_job(job.job_id, job.lease_token, result))

    def fail(self, job: ClaimedJob, error: str, retryable: bool) -> Verdict:
        """Reports failure (retried with backoff while attempts remain, if retryable)."""
        return self.run(job_calls.fail_job(job.job_id, job.lease_token, error, retryable))

    def release(self, job: ClaimedJob, reason: str) -> Verdict:
        """Gives the job back without spending an attempt (shutdown)."""
        return self.run(job_calls.release_job(job.job_id, job.lease_token, reason))

    def close(self) -> None:
        """Closes the connection."""
        with self._lock:
            if self._executor is not None:
                self._executor.close()
                self._executor = None
