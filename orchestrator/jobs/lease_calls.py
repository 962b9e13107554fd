"""The calls a worker makes under a lease: claim, renew, complete, fail, release.

Each builds a :class:`~orchestrator.db.calls.Call` for a function of
``sql/functions/jobs/claim.sql`` and ``settle.sql``; every report carries the claim's
lease token, which the SQL checks, so a worker the database gave up on cannot overwrite
the job's new owner. (:mod:`orchestrator.jobs.calls` re-exports them with the rest.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.db.calls import Call
from orchestrator.db.jsonsafe import json_safe
from orchestrator.jobs.model import ClaimResult, CompletedAndClaimed, LeaseExtension, Verdict

DEFAULT_LEASE_SECONDS = 20
"""A claim's lease (the SQL default too): a worker that dies right after renewing is
reclaimable this long after, within the hub's 30 s promise. Renew every third of it."""


def claim_jobs(
    worker_id: str,
    max_jobs: int = 1,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    provider: str = "local",
    job_types: Sequence[str] | None = None,
) -> Call[ClaimResult]:
    """Claim up to ``max_jobs`` jobs under the limits, each with a lease token."""
    return Call(
        "func_claim_jobs",
        {
            "worker_id": worker_id,
            "max_jobs": max_jobs,
            "lease_seconds": lease_seconds,
            "provider": provider,
            "job_types": None if job_types is None else list(job_types),
        },
        ClaimResult.from_raw,
    )


def extend_job_leases(
    worker_id: str, lease_seconds: int = DEFAULT_LEASE_SECONDS, job_ids: Sequence[str] | None = None
) -> Call[LeaseExtension]:
    """Renew the worker's leases; jobs in ``job_ids`` it no longer holds come back as lost."""
    return Call(
        "func_extend_job_leases",
        {
            "worker_id": worker_id,
            "lease_seconds": lease_seconds,
            "job_ids": None if job_ids is None else [str(j) for j in job_ids],
        },
        LeaseExtension.from_raw,
    )


def complete_job(
    job_id: str, lease_token: str, result: Mapping[str, Any] | None = None
) -> Call[Verdict]:
    """Finish a job under its current lease (a stale token is refused, not raised)."""
    return Call(
        "func_complete_job",
        {
            "job_id": job_id,
            "lease_token": lease_token,
            "result": json_safe(dict(result or {})),
        },
        Verdict.from_raw,
    )


def complete_jobs(
    completions: Sequence[tuple[str, str, Mapping[str, Any] | None]],
) -> Call[tuple[Verdict, ...]]:
    """Complete many jobs in one call and one commit: ``(job_id, lease_token, result)``
    each, fenced one by one; the verdicts come back in the same order."""
    items = [
        {"job_id": job_id, "lease_token": token, "result": dict(result or {})}
        for job_id, token, result in completions
    ]
    return Call(
        "func_complete_jobs",
        {"jobs": json_safe(items)},
        lambda raw: tuple(Verdict.from_raw(r) for r in raw["results"]),
    )


def complete_jobs_and_claim(
    completions: Sequence[tuple[str, str, Mapping[str, Any] | None]],
    worker_id: str,
    max_jobs: int = 1,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    provider: str = "local",
    job_types: Sequence[str] | None = None,
) -> Call[CompletedAndClaimed]:
    """:func:`complete_jobs` then :func:`claim_jobs` in one call and one commit: a worker
    that finishes jobs and has room for more pays one round trip and one WAL flush, not
    two. The claim sees the slots the completions free; an error rolls back both."""
    done = complete_jobs(completions)
    claim = claim_jobs(worker_id, max_jobs, lease_seconds, provider, job_types)
    return Call(
        "func_complete_jobs_and_claim", {**done.args, **claim.args}, CompletedAndClaimed.from_raw
    )


def fail_job(job_id: str, lease_token: str, error: str, retryable: bool = True) -> Call[Verdict]:
    """Report a failed attempt: retried with backoff while attempts remain."""
    return Call(
        "func_fail_job",
        {
            "job_id": job_id,
            "lease_token": lease_token,
            "error": json_safe(error),
            "retryable": retryable,
        },
        Verdict.from_raw,
    )


def release_job(job_id: str, lease_token: str, reason: str | None = None) -> Call[Verdict]:
    """Give a job back to the queue without using an attempt (e.g. on SIGTERM)."""
    return Call(
        "func_release_job",
        {"job_id": job_id, "lease_token": lease_token, "reason": reason},
        Verdict.from_raw,
    )
