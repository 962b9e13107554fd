"""Cancelling at the provider what was cancelled in the hub.

``orchestrator jobs cancel`` ends a job in the hub at once (``func_cancel_job``); a job
an external provider already runs must be stopped there too, or its GPU keeps running
and billing. Once cancelled, the job is no longer active, so the status poller never
asks about it again: :class:`RemoteCanceller` walks the daemon's own list instead
(``func_list_remote_cancels``: cancelled jobs whose provider copy was last seen active),
asks the provider to cancel each, and records the answer (``func_record_remote_cancel``),
which takes the job off the list. A transient provider error (timeout, 429, 5xx) leaves
it there for the next pass; a permanent one is recorded (``cancel_failed``, an event
with the error) and logged at ERROR, because a person has to look at it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.jobs import calls as jobs
from orchestrator.jobs.errors import JobError, job_errors
from orchestrator.logs.context import LogContext, set_correlation_id
from orchestrator.providers.base import ACTIVE_STATUSES, Provider, ProviderError

logger = logging.getLogger("orchestrator.daemon.tasks")

PAGE_SIZE = 500


class RemoteCanceller:
    """One pass: every hub-cancelled job still active at its provider is cancelled there."""

    def __init__(
        self, executor: AsyncCallExecutor, providers: Sequence[Provider], concurrency: int = 8
    ) -> None:
        self.executor = executor
        self.providers = [p for p in providers if p.dispatched_by_daemon]
        self.concurrency = concurrency

    async def __call__(self) -> int:
        """Returns how many jobs were settled at their provider in this pass."""
        settled = 0
        for provider in self.providers:
            settled += await self._provider_pass(provider)
        return settled

    async def _provider_pass(self, provider: Provider) -> int:
        limit = asyncio.Semaphore(self.concurrency)
        settled, after = 0, None
        while True:
            page = await self.executor.run(
                jobs.list_remote_cancels(provider.name, after_job_id=after, row_limit=PAGE_SIZE)
            )

            async def one(job_id: str, provider_job_id: str) -> bool:
                async with limit:
                    return await self.cancel(provider, job_id, provider_job_id)

            results = await asyncio.gather(
                *(one(r.job_id, r.provider_job_id) for r in page.rows if r.provider_job_id)
            )
            settled += sum(results)
            if not page.more or page.next is None:
                return settled
            after = page.next

    async def cancel(self, provider: Provider, job_id: str, provider_job_id: str) -> bool:
        """Cancels one job at ``provider`` and records the answer; False when it is left
        for the next pass (transient provider error, or the hub refused the record)."""
        set_correlation_id(job_id)
        with LogContext(job_id=job_id, provider=provider.name):
            error: str | None = None
            status, details = "cancelled", {}
            try:
                remote = await provider.cancel(provider_job_id)
                status, details = remote.status, dict(remote.details)
            except ProviderError as failure:
                if failure.transient:
                    logger.warning(
                        "Failed to cancel job %s at %s, will retry: %s",
                        job_id,
                        provider.name,
                        failure,
                    )
                    return False
                error = str(failure)
            try:
                with job_errors():
                    await self.executor.run(
                        jobs.record_remote_cancel(
                            job_id, status, provider_job_id, details, error=error
                        )
                    )
            except JobError as refusal:
                logger.warning("Job %s: could not record its remote cancel: %s", job_id, refusal)
                return False
            if error is not None:
                logger.error(
                    "Failed to cancel job %s at %s (%s): %s; it may still run there",
                    job_id,
                    provider.name,
                    provider_job_id,
                    error,
                )
            elif status in ACTIVE_STATUSES:  # stopping asynchronously: asked again next pass
                logger.debug("Job %s: cancel asked at %s, still %s", job_id, provider.name, status)
                return False
            else:
                logger.info(
                    "Cancelled job %s at %s (%s is %s there)",
                    job_id,
                    provider.name,
                    provider_job_id,
                    status,
                )
            return True
