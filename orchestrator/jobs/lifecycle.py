"""What the lifecycle functions return: bulk submit, pauses, periodic jobs, retention.

Decoded from the ``jsonb`` of ``func_submit_jobs``, ``func_pause_queue`` /
``func_resume_queue``, ``func_*_periodic_job(s)`` and ``func_prune_jobs`` (see
:mod:`orchestrator.jobs.model` for the rules these types follow).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.jobs.model import SubmitResult, instant


@dataclass(frozen=True, slots=True)
class BulkSubmitResult:
    """Every job of one ``func_submit_jobs`` call, in the order given."""

    submitted: int
    jobs: tuple[SubmitResult, ...]

    @classmethod
    def from_raw(cls, raw: Any) -> BulkSubmitResult:
        return cls(int(raw["submitted"]), tuple(SubmitResult.from_raw(j) for j in raw["jobs"]))


@dataclass(frozen=True, slots=True)
class QueuePause:
    """A provider's queue (``job_type`` None) or one job type of it, paused or resumed."""

    provider: str
    job_type: str | None
    paused: bool

    @classmethod
    def from_raw(cls, raw: Any) -> QueuePause:
        paused = bool(raw["paused"]) if "paused" in raw else not bool(raw.get("resumed"))
        return cls(str(raw["provider"]), raw.get("job_type"), paused)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """A cron schedule and the job template it submits at each tick."""

    name: str
    cron: str
    job: dict[str, Any]
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_job_id: str | None

    @classmethod
    def from_raw(cls, raw: Any) -> PeriodicJob:
        next_run_at = instant(raw["next_run_at"])
        assert next_run_at is not None
        return cls(
            name=str(raw["name"]),
            cron=str(raw["cron"]),
            job=dict(raw["job"]),
            enabled=bool(raw["enabled"]),
            next_run_at=next_run_at,
            last_run_at=instant(raw.get("last_run_at")),
            last_job_id=None if raw.get("last_job_id") is None else str(raw["last_job_id"]),
        )


@dataclass(frozen=True, slots=True)
class PeriodicJobs:
    """Schedules, with the database's clock (ticks are compared with it, not ours)."""

    now: datetime
    rows: tuple[PeriodicJob, ...]

    @classmethod
    def from_raw(cls, raw: Any) -> PeriodicJobs:
        now = instant(raw["now"])
        assert now is not None
        return cls(now, tuple(PeriodicJob.from_raw(r) for r in raw["rows"]))


@dataclass(frozen=True, slots=True)
class TickResult:
    """Whether this call submitted a tick's job (False: another daemon had it)."""

    name: str
    submitted: bool
    job_id: str | None

    @classmethod
    def from_raw(cls, raw: Any) -> TickResult:
        job = raw.get("job") or {}
        return cls(str(raw["name"]), bool(raw["submitted"]), job.get("job_id"))


@dataclass(frozen=True, slots=True)
class PruneResult:
    """One retention batch; ``more`` says another batch is waiting."""

    deleted_jobs: int
    deleted_workers: int
    more: bool

    @classmethod
    def from_raw(cls, raw: Any) -> PruneResult:
        return cls(int(raw["deleted_jobs"]), int(raw["deleted_workers"]), bool(raw["more"]))
