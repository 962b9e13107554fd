"""The read side of the job store: statistics, keyset pages, one job with its history.

Everything is computed by the database (no client-side aggregation over truncated
rows); pages carry ``next`` so a caller walks all of them instead of "the newest 100".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from orchestrator.jobs.model import instant


@dataclass(frozen=True, slots=True)
class OldestWaiting:
    """The queued job that has waited longest."""

    job_id: str
    queued_at: datetime | None
    age_seconds: float

    @classmethod
    def from_raw(cls, raw: Any) -> OldestWaiting:
        return cls(str(raw["job_id"]), instant(raw["queued_at"]), float(raw["age_seconds"]))


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """Queue depth by state, who is running what, the oldest waiting job, the limits."""

    depth_by_state: dict[str, int]
    running_by_user: dict[str, int]
    running_by_organization: dict[str, int]
    oldest_waiting: OldestWaiting | None
    limits: tuple[dict[str, Any], ...]

    @classmethod
    def from_raw(cls, raw: Any) -> QueueStatistics:
        oldest = raw.get("oldest_waiting")
        return cls(
            depth_by_state={str(k): int(v) for k, v in raw["depth_by_state"].items()},
            running_by_user={str(r["user_id"]): int(r["running"]) for r in raw["running_by_user"]},
            running_by_organization={
                str(r["organization_id"]): int(r["running"]) for r in raw["running_by_organization"]
            },
            oldest_waiting=None if oldest is None else OldestWaiting.from_raw(oldest),
            limits=tuple(dict(limit) for limit in raw.get("limits") or ()),
        )


@dataclass(frozen=True, slots=True)
class JobSummary:
    """A job as lists show it (no payload, result or history)."""

    job_id: str
    user_id: str
    organization_id: str
    job_type: str
    provider: str
    priority: int
    status: str
    attempts: int
    max_attempts: int
    estimated_cost: Decimal | None
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    provider_job_id: str | None
    provider_status: str | None

    @classmethod
    def from_raw(cls, raw: Any) -> JobSummary:
        cost = raw.get("estimated_cost")
        return cls(
            job_id=str(raw["job_id"]),
            user_id=str(raw["user_id"]),
            organization_id=str(raw["organization_id"]),
            job_type=str(raw["job_type"]),
            provider=str(raw["provider"]),
            priority=int(raw["priority"]),
            status=str(raw["status"]),
            attempts=int(raw["attempts"]),
            max_attempts=int(raw["max_attempts"]),
            estimated_cost=None if cost is None else Decimal(str(cost)),
            submitted_at=instant(raw.get("submitted_at")),
            started_at=instant(raw.get("started_at")),
            finished_at=instant(raw.get("finished_at")),
            error=raw.get("error"),
            provider_job_id=raw.get("provider_job_id"),
            provider_status=raw.get("provider_status"),
        )


@dataclass(frozen=True, slots=True)
class JobPage:
    """One keyset page of jobs; pass ``next`` as ``after_job_id`` for the following one."""

    rows: tuple[JobSummary, ...]
    more: bool
    next: str | None

    @classmethod
    def from_raw(cls, raw: Any) -> JobPage:
        rows = tuple(JobSummary.from_raw(r) for r in raw["rows"])
        return cls(rows, bool(raw["more"]), None if raw.get("next") is None else str(raw["next"]))


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One state change of a job."""

    event_id: int
    event_type: str
    from_status: str | None
    to_status: str | None
    worker_id: str | None
    details: dict[str, Any]
    created_at: datetime | None

    @classmethod
    def from_raw(cls, raw: Any) -> JobEvent:
        return cls(
            event_id=int(raw["event_id"]),
            event_type=str(raw["event_type"]),
            from_status=raw.get("from_status"),
            to_status=raw.get("to_status"),
            worker_id=raw.get("worker_id"),
            details=dict(raw.get("details") or {}),
            created_at=instant(raw.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class JobDetail:
    """One job in full: summary, payload and result, queue entry, approval, history."""

    job: JobSummary
    payload: dict[str, Any]
    result: Any
    queue: dict[str, Any] | None
    approval_request: dict[str, Any] | None
    events: tuple[JobEvent, ...]
    # {objects, bytes, last_upload_at, in_progress: [...]} (func_upload_progress); None
    # from a database older than migration 0090.
    upload_progress: dict[str, Any] | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> JobDetail:
        return cls(
            job=JobSummary.from_raw(raw),
            payload=dict(raw["payload"]),
            result=raw.get("result"),
            queue=raw.get("queue"),
            approval_request=raw.get("approval_request"),
            events=tuple(JobEvent.from_raw(e) for e in raw["events"]),
            upload_progress=raw.get("upload_progress"),
        )


@dataclass(frozen=True, slots=True)
class ProviderJobRow:
    """An active job of an external provider, for status polling."""

    job_id: str
    provider_job_id: str | None
    status: str
    provider_status: str | None

    @classmethod
    def from_raw(cls, raw: Any) -> ProviderJobRow:
        return cls(
            job_id=str(raw["job_id"]),
            provider_job_id=raw.get("provider_job_id"),
            status=str(raw["status"]),
            provider_status=raw.get("provider_status"),
        )


@dataclass(frozen=True, slots=True)
class ProviderJobPage:
    """One keyset page of a provider's active jobs."""

    rows: tuple[ProviderJobRow, ...]
    more: bool
    next: str | None

    @classmethod
    def from_raw(cls, raw: Any) -> ProviderJobPage:
        rows = tuple(ProviderJobRow.from_raw(r) for r in raw["rows"])
        return cls(rows, bool(raw["more"]), None if raw.get("next") is None else str(raw["next"]))


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of a listing (users, rules, limits, approval requests): rows as the
    database built them, and ``next`` (the after_ argument of the following page)."""

    rows: tuple[dict[str, Any], ...]
    more: bool
    next: str | None

    @classmethod
    def from_raw(cls, raw: Any) -> Listing:
        nxt = raw.get("next")
        return cls(
            tuple(dict(r) for r in raw["rows"]),
            bool(raw["more"]),
            None if nxt is None else str(nxt),
        )
