"""The worker's view of the job store: the contract's calls, on a connection that heals.

The rules live in SQL (``func_claim_jobs``, ``func_extend_job_leases``,
``func_complete_job(s)``, ``func_complete_jobs_and_claim``, ``func_fail_job``,
``func_release_job``); the call values come
from :mod:`orchestrator.jobs.calls`. This class only runs them, serialised (job threads
report through one connection), and reconnects after the connection broke, so a
database restart costs the worker a failed call, not its life.

The calls go through any executor a :class:`WorkerDatabase` opens: psycopg on a
PostgreSQL URL (the embedded server, PgBouncer, Supavisor), or Supabase REST, the only
door a GPU box may have (seed 004's workers heartbeat through supabase-py). Either
raises only the hub's own errors. REST has no ``LISTEN``, so a worker on it polls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.db.calls import Call
from orchestrator.db.executor import ClosableExecutor, executor_for
from orchestrator.db.target import RestTarget, SqlTarget, Target, describe_url
from orchestrator.jobs import calls as job_calls
from orchestrator.jobs.errors import job_errors
from orchestrator.jobs.model import ClaimedJob, ClaimResult, CompletedAndClaimed, Verdict

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerDatabase:
    """Where a worker's calls go (the :func:`~orchestrator.db.target.resolve_database`
    target) and how to open an executor of its own there: each thread that talks to
    the database (claims and reports, the heartbeat) gets one."""

    target: Target
    open: Callable[[], ClosableExecutor]

    @classmethod
    def of(cls, target: Target) -> WorkerDatabase:
        """The worker's database on ``target``: psycopg for SQL, supabase-py for REST."""
        return cls(target, lambda: executor_for(target))

    @classmethod
    def postgres(cls, url: str, label: str | None = None) -> WorkerDatabase:
        """psycopg on ``url``."""
        return cls.of(SqlTarget(url, label or describe_url(url)))

    @classmethod
    def supabase_rest(cls, url: str, key: str) -> WorkerDatabase:
        """supabase-py ``rpc`` on the project's REST gateway."""
        return cls.of(RestTarget(url, key))

    @property
    def label(self) -> str:
        """What messages call this database."""
        return self.target.label


class JobStore:
    """Runs job calls for one worker over one executor, replaced when it breaks."""

    def __init__(self, database: WorkerDatabase, worker_id: str, provider: str = "local") -> None:
        self.database, self.worker_id, self.provider = database, worker_id, provider
        self._executor: ClosableExecutor | None = None
        self._lock = threading.Lock()

    def run(self, call: Call[T]) -> T:
        """Executes ``call`` (the executor reconnects by itself after a loss)."""
        with self._lock:
            if self._executor is None:
                self._executor = self.database.open()
            with job_errors():  # a refusal is a JobError, for the callers that look
                return self._executor.run(call)

    def claim(
        self, max_jobs: int, lease_seconds: int, job_types: list[str] | None = None
    ) -> ClaimResult:
        """Up to ``max_jobs`` jobs, leased to this worker for ``lease_seconds``, and when
        the next scheduled one is due."""
        call = job_calls.claim_jobs(
            self.worker_id,
            max_jobs=max_jobs,
            lease_seconds=lease_seconds,
            provider=self.provider,
            job_types=job_types,
        )
        return self.run(call)

    def extend(self, lease_seconds: int, job_ids: list[str]) -> set[str]:
        """Renews the leases of ``job_ids``; returns those this worker no longer holds."""
        call = job_calls.extend_job_leases(self.worker_id, lease_seconds, job_ids)
        return set(self.run(call).lost)

    def complete(self, job: ClaimedJob, result: dict[str, Any]) -> Verdict:
        """Reports success; refused when ``job.lease_token`` is no longer current."""
        return self.run(job_calls.complete_job(job.job_id, job.lease_token, result))

    def complete_many(
        self, completions: list[tuple[ClaimedJob, dict[str, Any]]]
    ) -> tuple[Verdict, ...]:
        """Reports many successes in one call and one commit, each fenced by its token."""
        return self.run(job_calls.complete_jobs(_items(completions)))

    def complete_many_and_claim(
        self,
        completions: list[tuple[ClaimedJob, dict[str, Any]]],
        max_jobs: int,
        lease_seconds: int,
        job_types: list[str] | None = None,
    ) -> CompletedAndClaimed:
        """Reports many successes and claims up to ``max_jobs`` more in one call and one
        commit (the claim sees the slots the completions free)."""
        call = job_calls.complete_jobs_and_claim(
            _items(completions),
            self.worker_id,
            max_jobs=max_jobs,
            lease_seconds=lease_seconds,
            provider=self.provider,
            job_types=job_types,
        )
        return self.run(call)

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


def _items(completions: list[tuple[ClaimedJob, dict[str, Any]]]) -> list[tuple[str, str, Any]]:
    """(job_id, lease_token, result) for each completion, as the batch calls take them."""
    return [(job.job_id, job.lease_token, result) for job, result in completions]
