"""Every text and JSON input of the job functions has a size limit, refused in one line
naming the input and the limit, with nothing written (issue 15: a 20 MB display_name was
stored, a 20 MB duty name failed with a raw index error)."""

from __future__ import annotations

import pytest

from orchestrator.daemon.calls import try_duty_lease
from orchestrator.errors import InputRefused
from orchestrator.jobs import calls
from tests.integration.jobkit import hub

HUGE = "x" * 2_000_000  # the evaluation used 20 MB; 2 MB meets every limit as well
MIB = "y" * (1 << 20)
LONG = "z" * 300  # over a 255-character field, inside the 1 MiB job


@pytest.fixture
def h(db_url):
    """A hub with user alice and one running job of hers (``h.job``)."""
    with hub(db_url) as h:
        h.user("alice")
        h.submit()
        h.job = h.claim_one()
        yield h


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (
            lambda h: calls.upsert_hub_user("bob", "org", HUGE),
            "display_name is 2000000 characters; at most 255",
        ),
        (lambda h: try_duty_lease(HUGE, "daemon", 30), "duty takes at most 200 characters"),
        (lambda h: try_duty_lease("duty", HUGE, 30), "holder at most 255"),
        (
            lambda h: calls.submit_job("alice", "t", {"command": "echo", "blob": MIB}),
            "job is \\d+ bytes; at most 1048576",
        ),
        (
            lambda h: calls.submit_job("alice", "t", {"command": "echo"}, provider=LONG),
            "provider must be a non-blank string of at most 255",
        ),
        (
            lambda h: calls.submit_job("alice", LONG, {"command": "echo"}),
            "job_type is required: a non-blank string of at most 255",
        ),
        (
            lambda h: calls.submit_job(LONG, "t", {"command": "echo"}),
            "user_id is required \\(a string of at most 255",
        ),
        (
            lambda h: calls.submit_job("alice", "t", {"command": "echo"}, idempotency_key=LONG),
            "idempotency_key must be a string of 1 to 255",
        ),
        (
            lambda h: calls.complete_job(h.job.job_id, h.job.lease_token, {"out": MIB}),
            "result is \\d+ bytes; at most 1048576",
        ),
        (
            lambda h: calls.fail_job(h.job.job_id, h.job.lease_token, HUGE),
            "error is 2000000 characters; at most 65536",
        ),
        (
            lambda h: calls.release_job(h.job.job_id, h.job.lease_token, HUGE),
            "reason is 2000000 characters; at most 1000",
        ),
        (
            lambda h: calls.cancel_job(h.job.job_id, HUGE),
            "cancelled_by must name who cancels \\(a non-blank text of at most 255",
        ),
        (
            lambda h: calls.cancel_job(h.job.job_id, "alice", HUGE),
            "reason is 2000000 characters; at most 1000",
        ),
        (lambda h: calls.claim_jobs(HUGE), "worker_id must be a non-blank text of at most 255"),
        (
            lambda h: calls.extend_job_leases(HUGE),
            "worker_id must be a non-blank text of at most 255",
        ),
        (
            lambda h: calls.upsert_approval_rule(HUGE),
            "approval rule name must be a non-blank text of at most 255",
        ),
        (
            lambda h: calls.pause_queue("local", reason=HUGE),
            "reason is 2000000 characters; at most 1000",
        ),
        (
            lambda h: calls.rerun_job(h.job.job_id, HUGE),
            "requested_by is 2000000 characters; at most 255",
        ),
        (
            lambda h: calls.record_provider_status(h.job.job_id, "queued", HUGE),
            "provider_job_id is 2000000 characters; at most 255",
        ),
        (
            lambda h: calls.record_provider_status(h.job.job_id, "queued", None, {"d": MIB}),
            "details is \\d+ bytes; at most 65536",
        ),
    ],
)
def test_an_oversized_input_is_one_line_and_changes_nothing(h, build, says):
    """Each refusal is one line that says which input and how much is accepted."""
    before = h.sql("SELECT count(*), max(updated_at) FROM jobs")
    with pytest.raises(InputRefused, match=says) as caught:
        h.run(build(h))
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    assert h.sql("SELECT count(*), max(updated_at) FROM jobs") == before
    assert h.one("SELECT count(*) FROM hub_users WHERE length(display_name) > 255") == 0
    assert h.one("SELECT count(*) FROM daemon_leases") == 0
