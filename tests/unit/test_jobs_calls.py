"""The job calls are plain values with the contract's names; decoders build frozen types."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

import orchestrator.jobs as jobs
from orchestrator.jobs import calls
from orchestrator.jobs.errors import JobError, job_error_from, job_errors
from orchestrator.jobs.model import ClaimResult, Verdict


def test_public_names_are_documented_and_complete():
    """Every name in __all__ exists and has a docstring; no public name is left out."""
    for name in jobs.__all__:
        value = getattr(jobs, name)
        if name not in ("NOTIFY_CHANNEL", "DEFAULT_LEASE_SECONDS"):
            assert value.__doc__, name
    public = {n for n in vars(jobs) if not n.startswith("_")}
    assert public - {
        "calls",
        "errors",
        "lease_calls",
        "lifecycle",
        "model",
        "views",
        "wakeup",
    } == set(jobs.__all__)


def test_every_builder_targets_the_function_of_its_name():
    """claim_jobs -> func_claim_jobs, and so on for every builder."""
    examples = {
        "claim_jobs": calls.claim_jobs("w"),
        "submit_job": calls.submit_job("u", "t", {"command": "x"}),
        "complete_job": calls.complete_job("j", "t"),
        "expire_approvals": calls.expire_approvals(),
        "list_active_provider_jobs": calls.list_active_provider_jobs("p"),
    }
    for name, call in examples.items():
        assert call.function == f"func_{name}"


def test_submit_job_leaves_unset_options_to_the_sql_defaults():
    """Only the keys given travel, so the SQL function applies its own defaults."""
    call = calls.submit_job("u", "t", {"command": "x"}, priority=7)
    assert call.args["job"] == {
        "user_id": "u",
        "job_type": "t",
        "payload": {"command": "x"},
        "priority": 7,
    }


def test_decoders_build_frozen_values_with_datetimes():
    """A claim result decodes to frozen dataclasses with aware datetimes."""
    raw = {
        "jobs": [
            {
                "job_id": "j1",
                "lease_token": "t1",
                "attempt": 1,
                "job_type": "render",
                "provider": "local",
                "priority": 100,
                "payload": {"command": "true"},
                "user_id": "u",
                "organization_id": "o",
                "lease_expires_at": "2026-12-01T08:00:00.5+00:00",
            }
        ]
    }
    result = ClaimResult.from_raw(raw)
    job = result.jobs[0]
    assert isinstance(job.lease_expires_at, datetime) and job.lease_expires_at.tzinfo
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.attempt = 2  # type: ignore[misc]
    outcome = Verdict.from_raw({"accepted": False, "status": "running", "reason": "stale"})
    assert outcome == Verdict(False, "running", "stale")


class _DriverError(Exception):
    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def test_refusals_become_job_errors_and_other_errors_pass_through():
    """Class 22 and P0001 become JobError (one line); anything else is re-raised as is."""
    error = job_error_from(_DriverError("22023", "priority must be ...\nCONTEXT: x"))
    assert isinstance(error, JobError) and str(error) == "priority must be ..."
    assert job_error_from(_DriverError("40P01", "deadlock")) is None
    with pytest.raises(JobError), job_errors():
        raise _DriverError("P0001", "unknown job 1")
    with pytest.raises(_DriverError), job_errors():
        raise _DriverError("53300", "too many connections")
