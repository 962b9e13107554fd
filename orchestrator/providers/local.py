"""``LocalProvider``: jobs that run on ``orchestrator worker`` processes.

Workers claim local jobs from the queue themselves (``func_claim_jobs`` with provider
'local'), so the daemon never dispatches them; what the provider knows about a job is
what the database says.
"""

from __future__ import annotations

from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.jobs import calls as jobs
from orchestrator.providers.base import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    ProviderError,
    ProviderJob,
    RemoteStatus,
)

NAME = "local"


class LocalProvider:
    """The built-in provider; its status and cancel go through the job store."""

    name = NAME
    webhook_url: str | None = None
    dispatched_by_daemon = False

    def __init__(self, executor: AsyncCallExecutor) -> None:
        self.executor = executor

    async def submit(self, job: ProviderJob) -> RemoteStatus:
        """Refused: local jobs are claimed by workers, not handed over by the daemon."""
        raise ProviderError(
            "local jobs are not submitted by the daemon: `orchestrator worker` claims them "
            "from the queue (submit with `orchestrator jobs submit`)"
        )

    async def status(self, provider_job_id: str) -> RemoteStatus:
        """The job's status in the database (the local provider's id is the job id);
        awaiting_approval reads as pending."""
        detail = await self.executor.run(jobs.get_job(provider_job_id))
        status = detail.job.status
        known = status if status in ACTIVE_STATUSES + TERMINAL_STATUSES else "pending"
        return RemoteStatus(provider_job_id, known, {"hub_status": status})

    async def cancel(self, provider_job_id: str) -> RemoteStatus:
        """Cancels the job in the database; a worker running it sees its lease gone."""
        await self.executor.run(jobs.cancel_job(provider_job_id, "orchestrator-daemon"))
        return await self.status(provider_job_id)

    async def close(self) -> None:
        """Nothing to release."""
