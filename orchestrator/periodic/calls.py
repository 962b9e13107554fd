"""The periodic jobs' operations as :class:`~orchestrator.db.calls.Call` values (one
builder per function of ``sql/functions/jobs/periodic.sql``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from orchestrator.db.calls import Call
from orchestrator.db.jsonsafe import json_safe
from orchestrator.jobs.lifecycle import PeriodicJob, PeriodicJobs, TickResult


def upsert_periodic_job(
    name: str, cron: str, job: Mapping[str, Any], next_run_at: datetime, enabled: bool = True
) -> Call[PeriodicJob]:
    """Create or replace a schedule: ``job`` is a ``func_submit_job`` object (no
    idempotency key or run_at: each tick sets them), ``next_run_at`` its first tick."""
    return Call(
        "func_upsert_periodic_job",
        {
            "name": name,
            "cron": cron,
            "job": json_safe(dict(job)),
            "next_run_at": next_run_at.isoformat(),
            "enabled": enabled,
        },
        PeriodicJob.from_raw,
    )


def delete_periodic_job(name: str) -> Call[bool]:
    """Remove a schedule; True when there was one."""
    return Call("func_delete_periodic_job", {"name": name}, lambda raw: bool(raw["deleted"]))


def list_periodic_jobs(due_only: bool = False) -> Call[PeriodicJobs]:
    """Every schedule, or only the enabled ones whose tick has come, with the DB's now."""
    return Call("func_list_periodic_jobs", {"due_only": due_only}, PeriodicJobs.from_raw)


def enqueue_periodic_job(name: str, tick: datetime, next_run_at: datetime) -> Call[TickResult]:
    """Submit ``tick``'s job and move the schedule to ``next_run_at``, once per tick."""
    return Call(
        "func_enqueue_periodic_job",
        {"name": name, "tick": tick.isoformat(), "next_run_at": next_run_at.isoformat()},
        TickResult.from_raw,
    )
