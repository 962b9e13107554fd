"""What a provider is to the hub: somewhere jobs run, asked to submit, report and cancel.

The local provider's jobs run on ``orchestrator worker`` processes, which claim them
from the queue themselves; an external provider (a cloud GPU API) is driven by the
daemon: it claims the provider's jobs, submits them, and polls their status when the
provider has no webhook to call the hub back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orchestrator.errors import HubError

JobStatus = Literal["pending", "uploading", "queued", "running", "completed", "failed", "cancelled"]
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("pending", "uploading", "queued", "running")
TERMINAL_STATUSES: tuple[JobStatus, ...] = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class ProviderJob:
    """A job as a provider receives it (from a claim)."""

    job_id: str
    job_type: str
    payload: Mapping[str, Any]
    user_id: str | None = None
    priority: int = 100
    attempt: int = 1
    # S3 credentials for the job's uploads (orchestrator.storage.jobenv.upload_object),
    # or None when the hub has no public URL to upload to.
    upload: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    """What a provider says about one of its jobs, in the hub's status words."""

    provider_job_id: str
    status: JobStatus
    details: Mapping[str, Any] = field(default_factory=dict)


class ProviderError(HubError):
    """A provider call failed. ``transient``: worth retrying later (timeouts, 429, 5xx)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class Provider(Protocol):
    """The provider interface (seed: submit, status, cancel).

    ``dispatched_by_daemon`` is False for providers whose jobs are claimed by workers
    (the local one). ``webhook_url`` None means nothing calls the hub back, so the
    daemon polls the status of the provider's active jobs.
    """

    name: str
    webhook_url: str | None
    dispatched_by_daemon: bool

    async def submit(self, job: ProviderJob) -> RemoteStatus:
        """Hands the job to the provider; returns its id there and first status."""
        ...

    async def status(self, provider_job_id: str) -> RemoteStatus:
        """The job's current status at the provider."""
        ...

    async def cancel(self, provider_job_id: str) -> RemoteStatus:
        """Asks the provider to stop the job."""
        ...

    async def close(self) -> None:
        """Releases connections."""
        ...
