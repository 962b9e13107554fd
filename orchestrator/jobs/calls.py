"""The job store's operations as :class:`~orchestrator.db.calls.Call` values.

One builder per SQL function of ``sql/functions/jobs/`` (the name without ``func_``);
any executor (psycopg, asyncpg, supabase-py) runs them, so no rule is written twice. The
builders pass arguments through unchanged: the SQL functions check them and raise one
clear error (SQLSTATE class 22 or P0001, see :mod:`orchestrator.jobs.errors`). The
calls a worker makes under a lease live in :mod:`orchestrator.jobs.lease_calls` and are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from orchestrator.db.calls import Call
from orchestrator.db.jsonsafe import json_safe
from orchestrator.jobs.lease_calls import DEFAULT_LEASE_SECONDS as DEFAULT_LEASE_SECONDS
from orchestrator.jobs.lease_calls import claim_jobs as claim_jobs
from orchestrator.jobs.lease_calls import complete_job as complete_job
from orchestrator.jobs.lease_calls import complete_jobs as complete_jobs
from orchestrator.jobs.lease_calls import complete_jobs_and_claim as complete_jobs_and_claim
from orchestrator.jobs.lease_calls import extend_job_leases as extend_job_leases
from orchestrator.jobs.lease_calls import fail_job as fail_job
from orchestrator.jobs.lease_calls import release_job as release_job
from orchestrator.jobs.lifecycle import BulkSubmitResult, PruneResult, QueuePause
from orchestrator.jobs.model import (
    ApprovalRule,
    ConcurrencyLimit,
    Decision,
    ExpireResult,
    HubUser,
    ProviderStatusResult,
    ReapResult,
    SubmitResult,
    Verdict,
)
from orchestrator.jobs.views import JobDetail, JobPage, Listing, ProviderJobPage, QueueStatistics

NOTIFY_CHANNEL = "hub_jobs"
"""Channel of the NOTIFY sent when a job becomes claimable; the payload is the provider."""


def upsert_hub_user(
    user_id: str, organization_id: str, display_name: str | None = None
) -> Call[HubUser]:
    """Register a user (or move them to another organisation)."""
    return Call(
        "func_upsert_hub_user",
        {"user_id": user_id, "organization_id": organization_id, "display_name": display_name},
        HubUser.from_raw,
    )


def set_concurrency_limit(
    scope_type: str, scope_id: str | None, max_running: int | None
) -> Call[ConcurrencyLimit]:
    """Limit running jobs for ``global`` / ``organization`` / ``user``; ``None`` removes it."""
    return Call(
        "func_set_concurrency_limit",
        {"scope_type": scope_type, "scope_id": scope_id, "max_running": max_running},
        ConcurrencyLimit.from_raw,
    )


def upsert_approval_rule(
    name: str,
    *,
    job_type: str | None = None,
    provider: str | None = None,
    min_estimated_cost: float | Decimal | None = None,
    approval_ttl_seconds: int = 3600,
    allow_self_approval: bool = False,
    enabled: bool = True,
) -> Call[ApprovalRule]:
    """Create or replace a rule that sends matching jobs to approval."""
    return Call(
        "func_upsert_approval_rule",
        {
            "name": name,
            "job_type": job_type,
            "provider": provider,
            # as text: drivers send floats as double precision, which does not cast to numeric
            "min_estimated_cost": None if min_estimated_cost is None else str(min_estimated_cost),
            "approval_ttl_seconds": approval_ttl_seconds,
            "allow_self_approval": allow_self_approval,
            "enabled": enabled,
        },
        ApprovalRule.from_raw,
    )


def submit_job(
    user_id: str,
    job_type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    provider: str | None = None,
    priority: int | None = None,
    estimated_cost: float | Decimal | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    run_at: datetime | str | None = None,
    run_in_seconds: float | None = None,
    timeout_seconds: int | None = None,
) -> Call[SubmitResult]:
    """Submit a job; options left ``None`` take the SQL defaults (local, 100, 3, now).

    A local job's payload is ``{"command": "..."}`` or ``{"callable": "module:function",
    "kwargs": {...}}``. ``run_at`` (an aware datetime or ISO 8601 text) or
    ``run_in_seconds`` (counted on the database's clock) schedule it for later.
    """
    job = job_object(
        user_id,
        job_type,
        payload,
        provider=provider,
        priority=priority,
        estimated_cost=estimated_cost,
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
        run_at=run_at,
        run_in_seconds=run_in_seconds,
        timeout_seconds=timeout_seconds,
    )
    return Call("func_submit_job", {"job": json_safe(job)}, SubmitResult.from_raw)


def submit_job_object(job: Any) -> Call[SubmitResult]:
    """Submit a job given as the JSON object ``func_submit_job`` takes, unchecked: what an
    HTTP client sent goes to the function as it is, so its refusals are the CLI's."""
    return Call("func_submit_job", {"job": job}, SubmitResult.from_raw)


def job_object(
    user_id: str,
    job_type: str,
    payload: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The JSON object ``func_submit_job`` takes (options left ``None`` are omitted)."""
    job: dict[str, Any] = {"user_id": user_id, "job_type": job_type}
    if payload is not None:
        job["payload"] = dict(payload)
    for key, value in options.items():
        if value is None:
            continue
        if key == "estimated_cost":
            value = float(value)
        elif key == "run_at" and isinstance(value, datetime):
            value = value.isoformat()
        job[key] = value
    return job


def submit_jobs(jobs: Sequence[Mapping[str, Any]]) -> Call[BulkSubmitResult]:
    """Submit up to 1,000 jobs (objects as :func:`job_object` makes) in one transaction."""
    return Call(
        "func_submit_jobs", {"jobs": json_safe([dict(j) for j in jobs])}, BulkSubmitResult.from_raw
    )


def rerun_job(job_id: str, requested_by: str | None = None) -> Call[SubmitResult]:
    """Submit a failed or cancelled job again, as a new job pointing back at it."""
    return Call(
        "func_rerun_job", {"job_id": job_id, "requested_by": requested_by}, SubmitResult.from_raw
    )


def pause_queue(
    provider: str, job_type: str | None = None, paused_by: str = "admin", reason: str | None = None
) -> Call[QueuePause]:
    """Pause a provider's queue (or one job type of it): claims skip its jobs."""
    return Call(
        "func_pause_queue",
        {"provider": provider, "job_type": job_type, "paused_by": paused_by, "reason": reason},
        QueuePause.from_raw,
    )


def resume_queue(provider: str, job_type: str | None = None) -> Call[QueuePause]:
    """Resume what :func:`pause_queue` paused."""
    return Call(
        "func_resume_queue", {"provider": provider, "job_type": job_type}, QueuePause.from_raw
    )


def prune_jobs(retention_days: int, batch_size: int = 5000) -> Call[PruneResult]:
    """Delete one batch of jobs finished more than ``retention_days`` ago."""
    return Call(
        "func_prune_jobs",
        {"retention_days": retention_days, "batch_size": batch_size},
        PruneResult.from_raw,
    )


def approve_request(request_id: str, decided_by: str, note: str | None = None) -> Call[Decision]:
    """Approve a pending request before its deadline; the job becomes claimable."""
    return Call(
        "func_approve_request",
        {"request_id": request_id, "decided_by": decided_by, "note": note},
        Decision.from_raw,
    )


def reject_request(request_id: str, decided_by: str, note: str | None = None) -> Call[Decision]:
    """Reject a pending request; its job is cancelled."""
    return Call(
        "func_reject_request",
        {"request_id": request_id, "decided_by": decided_by, "note": note},
        Decision.from_raw,
    )


def cancel_job(job_id: str, cancelled_by: str, reason: str | None = None) -> Call[Verdict]:
    """Cancel a job in any state that has not finished; a running job's slot is freed."""
    return Call(
        "func_cancel_job",
        {"job_id": job_id, "cancelled_by": cancelled_by, "reason": reason},
        Verdict.from_raw,
    )


def reap_dead_workers(stale_after_seconds: int = 30) -> Call[ReapResult]:
    """Declare silent workers dead and take back jobs whose worker or lease is gone."""
    return Call(
        "func_reap_dead_workers", {"stale_after_seconds": stale_after_seconds}, ReapResult.from_raw
    )


def expire_approvals() -> Call[ExpireResult]:
    """Expire every pending approval past its deadline, in one statement."""
    return Call("func_expire_approvals", {}, ExpireResult.from_raw)


def queue_statistics() -> Call[QueueStatistics]:
    """Depth by state, running per user and organisation, oldest waiting job, limits."""
    return Call("func_queue_statistics", {}, QueueStatistics.from_raw)


def list_jobs(
    status: str | None = None,
    user_id: str | None = None,
    after_job_id: str | None = None,
    row_limit: int = 50,
    *,
    organization_id: str | None = None,
    job_type: str | None = None,
) -> Call[JobPage]:
    """One page of jobs, newest first; pass the page's ``next`` as ``after_job_id``."""
    return Call(
        "func_list_jobs",
        {
            "status": status,
            "user_id": user_id,
            "after_job_id": after_job_id,
            "row_limit": row_limit,
            "organization_id": organization_id,
            "job_type": job_type,
        },
        JobPage.from_raw,
    )


def job_events_after(
    after_event_id: int | None,
    *,
    job_ids: Sequence[str] | None = None,
    user_ids: Sequence[str] | None = None,
    event_types: Sequence[str] | None = None,
    row_limit: int = 100,
) -> Call[dict[str, Any]]:
    """Job events after ``after_event_id`` in the stream's final order (``None``: just the
    present position): ``{events, position, more}``; pass ``position`` back next time."""
    return Call(
        "func_job_events_after",
        {
            "after_event_id": after_event_id,
            "job_ids": None if job_ids is None else list(job_ids),
            "user_ids": None if user_ids is None else list(user_ids),
            "event_types": None if event_types is None else list(event_types),
            "row_limit": row_limit,
        },
        dict,
    )


def get_job(job_id: str) -> Call[JobDetail]:
    """One job with its queue entry, approval request and every event."""
    return Call("func_get_job", {"job_id": job_id}, JobDetail.from_raw)


def list_active_provider_jobs(
    provider: str, after_job_id: str | None = None, row_limit: int = 500
) -> Call[ProviderJobPage]:
    """One page of a provider's active jobs, oldest first (walk every page when polling)."""
    return Call(
        "func_list_active_provider_jobs",
        {"provider": provider, "after_job_id": after_job_id, "row_limit": row_limit},
        ProviderJobPage.from_raw,
    )


def record_provider_status(
    job_id: str,
    status: str,
    provider_job_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    lease_token: str | None = None,
) -> Call[ProviderStatusResult]:
    """Record an external provider's status; only a change writes an event. With the
    dispatcher's ``lease_token`` it is refused (``accepted`` False) once that claim is stale."""
    return Call(
        "func_record_provider_status",
        {
            "job_id": job_id,
            "status": status,
            "provider_job_id": provider_job_id,
            "details": json_safe(dict(details or {})),
            "lease_token": lease_token,
        },
        ProviderStatusResult.from_raw,
    )


def list_remote_cancels(
    provider: str, after_job_id: str | None = None, row_limit: int = 500
) -> Call[ProviderJobPage]:
    """One page of a provider's jobs cancelled in the hub but maybe still running there."""
    return Call(
        "func_list_remote_cancels",
        {"provider": provider, "after_job_id": after_job_id, "row_limit": row_limit},
        ProviderJobPage.from_raw,
    )


def record_remote_cancel(
    job_id: str,
    provider_status: str,
    provider_job_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> Call[ProviderStatusResult]:
    """Record the provider's answer to cancelling a hub-cancelled job (``error``: it
    refused for good; the job leaves the list of remote cancels either way)."""
    return Call(
        "func_record_remote_cancel",
        {
            "job_id": job_id,
            "provider_status": provider_status,
            "provider_job_id": provider_job_id,
            "details": json_safe(dict(details or {})),
            "error": None if error is None else json_safe(error),
        },
        ProviderStatusResult.from_raw,
    )


def list_hub_users(
    organization_id: str | None = None, after_user_id: str | None = None, row_limit: int = 100
) -> Call[Listing]:
    """One page of the users who may submit jobs, by user id."""
    return Call(
        "func_list_hub_users",
        {
            "organization_id": organization_id,
            "after_user_id": after_user_id,
            "row_limit": row_limit,
        },
        Listing.from_raw,
    )


def list_approval_rules() -> Call[Listing]:
    """Every approval rule, by name."""
    return Call("func_list_approval_rules", {}, Listing.from_raw)


def list_concurrency_limits() -> Call[Listing]:
    """Every concurrency limit with its running count."""
    return Call("func_list_concurrency_limits", {}, Listing.from_raw)


def list_approval_requests(
    status: str | None = "pending", after_request_id: str | None = None, row_limit: int = 100
) -> Call[Listing]:
    """One page of approval requests of ``status`` (None: all), oldest first."""
    return Call(
        "func_list_approval_requests",
        {"status": status, "after_request_id": after_request_id, "row_limit": row_limit},
        Listing.from_raw,
    )
