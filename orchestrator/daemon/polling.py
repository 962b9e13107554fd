"""Status polling: what the daemon asks providers about the jobs they run, and the one
way a provider's answer is recorded (:func:`record`, shared with the dispatcher).

:class:`JobStatusPoller` asks for the status of EVERY active job, page by page
(``func_list_active_provider_jobs`` is keyset-paged; the seed's poller saw only the newest
100), at most ``concurrency`` requests at once per provider, and records each change as an
event; a provider whose circuit is open is not asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.jobs import calls as jobs
from orchestrator.jobs.errors import JobError, job_errors
from orchestrator.jobs.model import ProviderStatusResult
from orchestrator.jobs.views import ProviderJobRow
from orchestrator.logs.context import LogContext, set_correlation_id
from orchestrator.providers.base import Provider, ProviderError, RemoteStatus
from orchestrator.providers.circuit import CircuitBreaker

logger = logging.getLogger("orchestrator.daemon.tasks")

PAGE_SIZE = 500


class JobStatusPoller:
    """Syncs every active job of the polled providers with what the provider says."""

    def __init__(
        self,
        executor: AsyncCallExecutor,
        providers: Sequence[Provider],
        *,
        concurrency: Mapping[str, int] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.executor = executor
        self.providers = [p for p in providers if p.dispatched_by_daemon]
        self.concurrency = dict(concurrency or {})  # status requests at once, per provider
        self.breaker = breaker
        self._calls: dict[str, list[str | None]] = {}  # this pass's outcomes per provider

    async def __call__(self) -> int:
        """One pass; returns how many jobs were synced (asked and recorded)."""
        synced = 0
        for provider in self.providers:
            synced += await self._sync_provider(provider)
        logger.debug("Synced %d active jobs", synced)
        return synced

    async def _sync_provider(self, provider: Provider) -> int:
        if self.breaker is None:
            return await self._sync_pages(provider)
        if not (await self.breaker.admit(provider.name)).allow:
            return 0
        self._calls[provider.name] = []
        try:
            return await self._sync_pages(provider)
        finally:
            outcomes = self._calls.pop(provider.name, [])
            if outcomes:  # one record per pass: up when any call got an answer
                ok = any(error is None for error in outcomes)
                await self.breaker.record(provider.name, ok, None if ok else outcomes[-1])

    async def _sync_pages(self, provider: Provider) -> int:
        limit = asyncio.Semaphore(self.concurrency.get(provider.name, 8))
        synced, after = 0, None
        while True:
            page = await self.executor.run(
                jobs.list_active_provider_jobs(
                    provider.name, after_job_id=after, row_limit=PAGE_SIZE
                )
            )
            rows = [r for r in page.rows if r.provider_job_id]  # not yet submitted: skip
            results = await asyncio.gather(*(self._sync_one(provider, r, limit) for r in rows))
            synced += sum(results)
            if not page.more or page.next is None:
                return synced
            after = page.next

    async def _sync_one(
        self, provider: Provider, row: ProviderJobRow, limit: asyncio.Semaphore
    ) -> bool:
        job_id = str(row.job_id)
        set_correlation_id(job_id)
        with LogContext(job_id=job_id, provider=provider.name):
            calls = self._calls.get(provider.name)
            try:
                async with limit:
                    remote = await provider.status(str(row.provider_job_id))
            except ProviderError as error:
                logger.debug("Failed to sync job %s: %s", job_id, error)
                if calls is not None:
                    calls.append(str(error) if error.transient else None)
                return False
            if calls is not None:
                calls.append(None)
            if (
                remote.status == row.provider_status
                and remote.provider_job_id == row.provider_job_id
            ):
                return True  # unchanged: nothing to record
            try:
                result = await record(self.executor, job_id, remote)
            except JobError as error:
                logger.debug("Failed to sync job %s: %s", job_id, error)
                return False
            if result.changed:
                logger.info(
                    "Job %s is %s at %s (was %s)",
                    job_id,
                    remote.status,
                    provider.name,
                    row.provider_status,
                )
            return True


async def record(
    executor: AsyncCallExecutor, job_id: str, remote: RemoteStatus, lease_token: str | None = None
) -> ProviderStatusResult:
    """Records what a provider said (an event only when it changed); a refusal of the
    job store (unknown job, job no longer dispatched) raises :class:`JobError`. With the
    dispatch's ``lease_token``, a stale claim comes back with ``accepted`` False."""
    with job_errors():
        return await executor.run(
            jobs.record_provider_status(
                job_id, remote.status, remote.provider_job_id, dict(remote.details), lease_token
            )
        )
