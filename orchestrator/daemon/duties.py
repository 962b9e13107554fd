"""What the daemon does each time a duty is due; each is one callable over SQL functions.

* :class:`QueueDispatcher` hands claimable jobs of external providers to them, in the
  queue's priority order and within the concurrency limits (``func_claim_jobs`` decides
  both), and records the provider's job id;
* :class:`~orchestrator.daemon.remote_cancels.RemoteCanceller` stops at the provider
  what was cancelled in the hub;
* :class:`~orchestrator.daemon.polling.JobStatusPoller` asks providers for the status of
  every active job (``orchestrator/daemon/polling.py``, which also holds :func:`record`,
  the one way a provider's answer is recorded);
* :func:`expire_approvals`, :func:`reap_dead_workers` and :class:`LogMaintenance` call
  one function each.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.config import Settings
from orchestrator.daemon.polling import record
from orchestrator.daemon.remote_cancels import RemoteCanceller
from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.errors import HubError
from orchestrator.jobs import calls as jobs
from orchestrator.jobs.errors import JobError, job_errors
from orchestrator.jobs.model import ClaimedJob, ReapResult
from orchestrator.logs import calls as log_calls
from orchestrator.logs.context import LogContext, set_correlation_id
from orchestrator.providers.base import (
    TERMINAL_STATUSES,
    Provider,
    ProviderError,
    ProviderJob,
    RemoteStatus,
)
from orchestrator.providers.circuit import Admission, CircuitBreaker
from orchestrator.storage.calls import issue_upload_credential
from orchestrator.storage.jobenv import storage_endpoint, upload_object

logger = logging.getLogger("orchestrator.daemon.tasks")

# The lease of a job claimed for dispatch, until the provider has it: recording the
# provider's job id drops the lease (status polling tracks the job from then on). A
# daemon that dies between claim and submit leaves a lease that expires and the reaper
# requeues the job.
DISPATCH_LEASE_SECONDS = 60


def provider_worker_id(provider: str) -> str:
    """The worker id under which the daemon claims a provider's jobs."""
    return f"provider:{provider}"


@dataclass(frozen=True, slots=True)
class UploadGrant:
    """Where dispatched jobs upload to, and for how long their credentials last."""

    endpoint: str
    bucket: str = "outputs"
    ttl_seconds: int = 7 * 86_400

    @classmethod
    def of(cls, settings: Settings) -> UploadGrant | None:
        """From the settings; None without ``ORCHESTRATOR_PUBLIC_URL`` (nowhere to upload)."""
        endpoint = storage_endpoint(settings)
        if endpoint is None:
            return None
        return cls(endpoint, settings.storage_bucket, settings.storage_credential_ttl)


class QueueDispatcher:
    """Claims the claimable jobs of each external provider and submits them."""

    def __init__(
        self,
        executor: AsyncCallExecutor,
        providers: Sequence[Provider],
        *,
        batch: int = 10,
        max_per_pass: int = 1000,
        breaker: CircuitBreaker | None = None,
        uploads: UploadGrant | None = None,
    ) -> None:
        self.executor = executor
        self.uploads = uploads
        self.providers = [p for p in providers if p.dispatched_by_daemon]
        self.batch = batch
        self.max_per_pass = max_per_pass
        self.breaker = breaker
        self.canceller = RemoteCanceller(executor, self.providers)

    async def __call__(self) -> int:
        """One pass over every provider; returns how many jobs were submitted."""
        submitted = 0
        for provider in self.providers:
            submitted += await self._dispatch(provider)
        if submitted:
            logger.info("Dispatched %d job(s) to providers", submitted)
        return submitted

    async def _dispatch(self, provider: Provider) -> int:
        worker_id = provider_worker_id(provider.name)
        # An open circuit claims nothing: the jobs stay queued, no attempt is spent. A
        # half-open probe claims one job and submits it as the trial call.
        admission = await self.breaker.admit(provider.name) if self.breaker else Admission(True)
        if not admission.allow:
            logger.debug(
                "Provider %s: circuit %s, nothing dispatched", provider.name, admission.state
            )
            return 0
        batch = 1 if admission.probe else self.batch
        submitted = 0
        while submitted < self.max_per_pass:
            claim = await self.executor.run(
                jobs.claim_jobs(
                    worker_id,
                    max_jobs=batch,
                    lease_seconds=DISPATCH_LEASE_SECONDS,
                    provider=provider.name,
                )
            )
            for index, job in enumerate(claim.jobs):  # the queue's priority order
                done = await self._submit(provider, job)
                if done:
                    submitted += 1
                if done is None:  # the circuit opened: the rest go back to the queue
                    await self._release(worker_id, claim.jobs[index + 1 :])
                    return submitted
            if len(claim.jobs) < batch or admission.probe:
                break
        return submitted

    async def _release(self, worker_id: str, claimed: Sequence[ClaimedJob]) -> None:
        """Gives back jobs claimed but not submitted (a release spends no attempt)."""
        for job in claimed:
            with contextlib.suppress(JobError), job_errors():
                await self.executor.run(
                    jobs.release_job(str(job.job_id), job.lease_token, "provider circuit open")
                )

    async def _record_call(self, provider: Provider, error: ProviderError | None) -> bool:
        """Tells the breaker; False when the circuit is now open."""
        if self.breaker is None:
            return True
        failed = error is not None and error.transient
        state = await self.breaker.record(provider.name, not failed, str(error) if failed else None)
        return state != "open"

    async def _submit(self, provider: Provider, job: ClaimedJob) -> bool | None:
        job_id = str(job.job_id)
        worker_id = provider_worker_id(provider.name)
        set_correlation_id(job_id)  # the provider sees the job id in X-Correlation-ID
        with LogContext(job_id=job_id, provider=provider.name):
            # Fenced like a worker: the batch may have outlived its lease, and then the
            # job may be another dispatch's. Renewing proves it is still ours (and
            # gives the submit a whole lease); a job lost here is left alone.
            renewal = await self.executor.run(
                jobs.extend_job_leases(worker_id, DISPATCH_LEASE_SECONDS, [job_id])
            )
            if job_id in renewal.lost:
                logger.warning("Job %s is no longer this dispatch's (lease lost); skipped", job_id)
                return False
            try:
                remote = await provider.submit(
                    ProviderJob(
                        job_id=job_id,
                        job_type=job.job_type,
                        payload=job.payload,
                        user_id=job.user_id,
                        priority=job.priority,
                        attempt=job.attempt,
                        upload=await self._upload(job_id),
                    )
                )
            except ProviderError as error:
                logger.warning("Failed to submit job %s to %s: %s", job_id, provider.name, error)
                with job_errors():
                    await self.executor.run(
                        jobs.fail_job(
                            job_id, job.lease_token, str(error), retryable=error.transient
                        )
                    )
                return False if await self._record_call(provider, error) else None
            await self._record_call(provider, None)
            try:
                recorded = await record(self.executor, job_id, remote, job.lease_token)
            except JobError as error:  # e.g. the job was taken back meanwhile
                logger.error(
                    "Job %s was submitted to %s as %s but the hub refused to record it: %s",
                    job_id,
                    provider.name,
                    remote.provider_job_id,
                    error,
                )
                return False
            if not recorded.accepted:
                if recorded.status in ("completed", "failed") and (
                    recorded.provider_status == recorded.status
                ):  # the provider's webhook was faster than this record: it is done
                    logger.info(
                        "Job %s was finished by %s's webhook before its submission was recorded",
                        job_id,
                        provider.name,
                    )
                    return True
                await self._stale_copy(provider, job_id, remote, recorded.reason)
                return False
            if recorded.status == "cancelled" and remote.status not in TERMINAL_STATUSES:
                await self._cancelled_meanwhile(provider, job_id, remote)
                return False
            logger.info(
                "Submitted job %s to %s as %s (%s)",
                job_id,
                provider.name,
                remote.provider_job_id,
                remote.status,
            )
            return True

    async def _upload(self, job_id: str) -> dict[str, str] | None:
        """The job's S3 credentials for the submit body; a failure to issue them costs
        the job its uploads (a warning), not its dispatch."""
        grant = self.uploads
        if grant is None:
            return None
        try:
            credential = await self.executor.run(
                issue_upload_credential(job_id, grant.bucket, grant.ttl_seconds)
            )
        except HubError as error:
            logger.warning("No upload credentials for job %s: %s", job_id, error)
            return None
        return upload_object(credential, grant.endpoint)

    async def _stale_copy(
        self, provider: Provider, job_id: str, remote: RemoteStatus, reason: str | None
    ) -> None:
        """The submit outlived this dispatch's lease and the job is someone else's now:
        the copy just made at the provider is cancelled, so the job runs once."""
        logger.error(
            "Job %s: this dispatch lost its lease while submitting (%s); cancelling the "
            "copy %s at %s",
            job_id,
            reason,
            remote.provider_job_id,
            provider.name,
        )
        try:
            await provider.cancel(remote.provider_job_id)
        except ProviderError as error:
            logger.error(
                "Job %s: could not cancel the stale copy %s at %s: %s",
                job_id,
                remote.provider_job_id,
                provider.name,
                error,
            )

    async def _cancelled_meanwhile(
        self, provider: Provider, job_id: str, remote: RemoteStatus
    ) -> None:
        """The job was cancelled in the hub while the provider accepted it: its provider
        id goes on the list of remote cancels, and it is cancelled there right away (a
        transient failure is retried by the next remote-cancellation pass)."""
        logger.info("Job %s was cancelled during its submission to %s", job_id, provider.name)
        try:
            with job_errors():
                await self.executor.run(
                    jobs.record_remote_cancel(
                        job_id, remote.status, remote.provider_job_id, dict(remote.details)
                    )
                )
        except JobError as error:
            logger.error("Job %s: could not record its provider id: %s", job_id, error)
            return
        await self.canceller.cancel(provider, job_id, remote.provider_job_id)


async def expire_approvals(executor: AsyncCallExecutor) -> int:
    """Expires overdue approval requests (one SQL statement); returns how many."""
    result = await executor.run(jobs.expire_approvals())
    if result.expired:
        logger.info("Expired %d approval requests", result.expired)
    return int(result.expired)


async def reap_dead_workers(executor: AsyncCallExecutor, stale_after_seconds: int) -> ReapResult:
    """Requeues (or fails) the jobs of workers silent for ``stale_after_seconds`` and of
    expired leases."""
    result = await executor.run(jobs.reap_dead_workers(stale_after_seconds))
    if result.dead_workers or result.requeued or result.failed:
        logger.info(
            "Reaped %d dead worker(s): %d job(s) requeued, %d failed",
            result.dead_workers,
            result.requeued,
            result.failed,
        )
    return result


async def prune_jobs(executor: AsyncCallExecutor, retention_days: int, batches: int = 20) -> int:
    """Deletes finished jobs older than ``retention_days``, batch by batch (at most
    ``batches`` per pass, so one pass stays short); returns how many."""
    deleted = 0
    for _ in range(batches):
        result = await executor.run(jobs.prune_jobs(retention_days))
        deleted += result.deleted_jobs
        if not result.more:
            break
    if deleted:
        logger.info(
            "Job retention: %d finished job(s) older than %d days deleted", deleted, retention_days
        )
    return deleted


class LogMaintenance:
    """Partitions ahead and retention, unless pg_cron already runs them (``enabled`` None)."""

    def __init__(
        self, executor: AsyncCallExecutor, retention_hours: int, enabled: bool | None
    ) -> None:
        self.executor = executor
        self.retention_hours = retention_hours
        self.enabled = enabled

    async def __call__(self) -> Mapping[str, Any] | None:
        """One pass; None when pg_cron does it."""
        if self.enabled is None:
            by_cron = await self.executor.run(log_calls.log_maintenance_by_cron())
            if by_cron:
                logger.debug("Log maintenance is scheduled in pg_cron; skipped")
                return None
        partitions = await self.executor.run(log_calls.maintain_log_partitions())
        cleanup = await self.executor.run(log_calls.cleanup_old_logs(self.retention_hours))
        if partitions.created or cleanup.dropped_partitions:
            logger.info(
                "Log maintenance: %d partition(s) created, %d dropped",
                len(partitions.created),
                len(cleanup.dropped_partitions),
            )
        return {"partitions": partitions, "cleanup": cleanup}
