"""What the job functions return, as frozen dataclasses decoded from their ``jsonb``.

Each ``from_raw`` takes the plain Python value a driver hands over (dicts, lists, str,
int, float) and checks nothing the database already guarantees: the SQL functions are
the contract, these types only name its fields. Ids stay strings (they travel as JSON
and go back into calls unchanged); instants become aware ``datetime`` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


def instant(raw: Any) -> datetime | None:
    """An ISO 8601 instant from the database (``None`` stays ``None``)."""
    return None if raw is None else datetime.fromisoformat(str(raw))


def _required_instant(raw: Any) -> datetime:
    value = instant(raw)
    if value is None:
        raise ValueError("the database returned no time where one is required")
    return value


def _optional_str(raw: Any) -> str | None:
    return None if raw is None else str(raw)


def _decimal(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(str(raw))


@dataclass(frozen=True, slots=True)
class HubUser:
    """A user who may submit jobs, and the organisation their jobs count against."""

    user_id: str
    organization_id: str
    display_name: str | None

    @classmethod
    def from_raw(cls, raw: Any) -> HubUser:
        return cls(str(raw["user_id"]), str(raw["organization_id"]), raw.get("display_name"))


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """A scope's limit and its exact running count (both ``None`` once removed)."""

    scope_type: str
    scope_id: str | None
    max_running: int | None
    running: int | None

    @classmethod
    def from_raw(cls, raw: Any) -> ConcurrencyLimit:
        return cls(
            scope_type=str(raw["scope_type"]),
            scope_id=_optional_str(raw.get("scope_id")),
            max_running=None if raw.get("max_running") is None else int(raw["max_running"]),
            running=None if raw.get("running") is None else int(raw["running"]),
        )


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """When a submitted job must wait for a person's decision."""

    name: str
    job_type: str | None
    provider: str | None
    min_estimated_cost: Decimal | None
    approval_ttl_seconds: int
    allow_self_approval: bool
    enabled: bool

    @classmethod
    def from_raw(cls, raw: Any) -> ApprovalRule:
        return cls(
            name=str(raw["name"]),
            job_type=raw.get("job_type"),
            provider=raw.get("provider"),
            min_estimated_cost=_decimal(raw.get("min_estimated_cost")),
            approval_ttl_seconds=int(raw["approval_ttl_seconds"]),
            allow_self_approval=bool(raw["allow_self_approval"]),
            enabled=bool(raw["enabled"]),
        )


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """A submitted job: queued, or awaiting approval until ``approval_expires_at``."""

    job_id: str
    status: str
    approval_request_id: str | None
    approval_expires_at: datetime | None
    duplicate: bool
    run_at: datetime | None = None
    rerun_of: str | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> SubmitResult:
        return cls(
            job_id=str(raw["job_id"]),
            status=str(raw["status"]),
            approval_request_id=_optional_str(raw.get("approval_request_id")),
            approval_expires_at=instant(raw.get("approval_expires_at")),
            duplicate=bool(raw.get("duplicate", False)),
            run_at=instant(raw.get("run_at")),
            rerun_of=_optional_str(raw.get("rerun_of")),
        )


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker now holds; ``lease_token`` must accompany everything it reports."""

    job_id: str
    lease_token: str
    attempt: int
    job_type: str
    provider: str
    priority: int
    payload: dict[str, Any]
    user_id: str
    organization_id: str
    lease_expires_at: datetime
    timeout_seconds: int | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> ClaimedJob:
        return cls(
            job_id=str(raw["job_id"]),
            lease_token=str(raw["lease_token"]),
            attempt=int(raw["attempt"]),
            job_type=str(raw["job_type"]),
            provider=str(raw["provider"]),
            priority=int(raw["priority"]),
            payload=dict(raw["payload"]),
            user_id=str(raw["user_id"]),
            organization_id=str(raw["organization_id"]),
            lease_expires_at=_required_instant(raw["lease_expires_at"]),
            timeout_seconds=None
            if raw.get("timeout_seconds") is None
            else int(raw["timeout_seconds"]),
        )


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The jobs one claim got (possibly none).

    ``next_run_after``: when the claim got fewer jobs than asked, the moment the next
    scheduled job of the provider (run_at, retry backoff) becomes due, so an idle worker
    wakes then instead of one poll interval later. ``paused``: the provider's queue is.
    """

    jobs: tuple[ClaimedJob, ...]
    next_run_after: datetime | None = None
    paused: bool = False

    @classmethod
    def from_raw(cls, raw: Any) -> ClaimResult:
        return cls(
            tuple(ClaimedJob.from_raw(job) for job in raw["jobs"]),
            instant(raw.get("next_run_after")),
            bool(raw.get("paused", False)),
        )


@dataclass(frozen=True, slots=True)
class LeaseExtension:
    """Leases renewed by a heartbeat, and the jobs the worker no longer holds."""

    extended: int
    job_ids: tuple[str, ...]
    lost: tuple[str, ...]
    lease_expires_at: datetime | None

    @classmethod
    def from_raw(cls, raw: Any) -> LeaseExtension:
        return cls(
            extended=int(raw["extended"]),
            job_ids=tuple(str(j) for j in raw["job_ids"]),
            lost=tuple(str(j) for j in raw.get("lost") or ()),
            lease_expires_at=instant(raw.get("lease_expires_at")),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The job store's verdict on a complete, fail, release or cancel.

    ``accepted`` is false, with ``reason``, when the lease token was stale (a worker
    wrongly declared dead) or the job had already finished: the job was not changed.
    """

    accepted: bool
    status: str | None
    reason: str | None
    attempt: int | None = None
    run_after: datetime | None = None
    previous_status: str | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> Verdict:
        return cls(
            accepted=bool(raw["accepted"]),
            status=_optional_str(raw.get("status")),
            reason=_optional_str(raw.get("reason")),
            attempt=None if raw.get("attempt") is None else int(raw["attempt"]),
            run_after=instant(raw.get("run_after")),
            previous_status=_optional_str(raw.get("previous_status")),
        )


@dataclass(frozen=True, slots=True)
class CompletedAndClaimed:
    """What ``func_complete_jobs_and_claim`` answered: the completions' verdicts in the
    order given, then the claim that followed them in the same transaction."""

    verdicts: tuple[Verdict, ...]
    claim: ClaimResult

    @classmethod
    def from_raw(cls, raw: Any) -> CompletedAndClaimed:
        return cls(
            tuple(Verdict.from_raw(r) for r in raw["results"]), ClaimResult.from_raw(raw["claim"])
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """An approval request after approve or reject."""

    request_id: str
    job_id: str
    status: str
    job_status: str
    decided_by: str
    decided_at: datetime | None

    @classmethod
    def from_raw(cls, raw: Any) -> Decision:
        return cls(
            request_id=str(raw["request_id"]),
            job_id=str(raw["job_id"]),
            status=str(raw["status"]),
            job_status=str(raw["job_status"]),
            decided_by=str(raw["decided_by"]),
            decided_at=instant(raw.get("decided_at")),
        )


@dataclass(frozen=True, slots=True)
class ExpireResult:
    """Approval requests expired by one run (their jobs cancelled)."""

    expired: int
    job_ids: tuple[str, ...]
    request_ids: tuple[str, ...]

    @classmethod
    def from_raw(cls, raw: Any) -> ExpireResult:
        return cls(
            expired=int(raw["expired"]),
            job_ids=tuple(str(j) for j in raw["job_ids"]),
            request_ids=tuple(str(r) for r in raw.get("request_ids") or ()),
        )


@dataclass(frozen=True, slots=True)
class ReapResult:
    """Workers declared dead and the jobs taken back from dead or silent workers."""

    dead_workers: int
    dead_worker_ids: tuple[str, ...]
    requeued: int
    failed: int
    job_ids: tuple[str, ...]

    @classmethod
    def from_raw(cls, raw: Any) -> ReapResult:
        return cls(
            dead_workers=int(raw["dead_workers"]),
            dead_worker_ids=tuple(str(w) for w in raw.get("dead_worker_ids") or ()),
            requeued=int(raw["requeued"]),
            failed=int(raw["failed"]),
            job_ids=tuple(str(j) for j in raw.get("job_ids") or ()),
        )


@dataclass(frozen=True, slots=True)
class ProviderStatusResult:
    """Whether a provider's report changed the job (reports are recorded on change only)."""

    changed: bool
    status: str
    provider_status: str | None
    accepted: bool = True  # False: the dispatcher's lease token was stale (nothing changed)
    reason: str | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> ProviderStatusResult:
        return cls(
            changed=bool(raw["changed"]),
            status=str(raw["status"]),
            provider_status=_optional_str(raw.get("provider_status")),
            accepted=bool(raw.get("accepted", True)),
            reason=_optional_str(raw.get("reason")),
        )
