"""A mixed job workload for the metrics tests: every status and most transitions
(submit, approval approve/reject, claim, complete, retryable and final failure, release,
cancel of queued and running jobs, two providers), plus log rows and audit events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.audit.calls import audit_append
from orchestrator.jobs import calls
from orchestrator.logs.calls import insert_logs_batch
from tests.integration.jobkit import Hub


def mixed_workload(h: Hub) -> None:
    """Runs the workload through the real SQL functions."""
    h.user("alice", "acme")
    h.user("bob", "beta")
    h.run(calls.upsert_approval_rule("costly", min_estimated_cost=100))
    done = [h.submit("alice", estimated_cost=2.5) for _ in range(5)]
    for _ in range(3):
        h.submit("bob", provider="cloud-a", estimated_cost=7)
    approved = h.submit("alice", estimated_cost=150)
    rejected = h.submit("alice", estimated_cost=200)
    h.submit("bob", estimated_cost=300)  # stays awaiting approval
    h.run(calls.approve_request(approved.approval_request_id, "bob"))
    h.run(calls.reject_request(rejected.approval_request_id, "bob"))
    claimed = h.claim("w1", max_jobs=5)
    for job in claimed[:2]:
        h.run(calls.complete_job(job.job_id, job.lease_token, {"ok": True}))
    h.run(calls.fail_job(claimed[2].job_id, claimed[2].lease_token, "boom", retryable=False))
    h.run(calls.fail_job(claimed[3].job_id, claimed[3].lease_token, "flaky", retryable=True))
    h.run(calls.release_job(claimed[4].job_id, claimed[4].lease_token, "shutdown"))
    remote = h.claim("dispatcher", max_jobs=2, provider="cloud-a")
    h.run(calls.record_provider_status(remote[0].job_id, "running", "r-1"))
    h.run(calls.record_provider_status(remote[1].job_id, "completed", "r-2"))
    running = h.claim("w2", max_jobs=1)
    h.run(calls.cancel_job(running[0].job_id, "alice", "changed my mind"))
    queued = [j for j in done if h.status(j.job_id)[0] == "queued"]
    if queued:
        h.run(calls.cancel_job(queued[-1].job_id, "alice"))
    now = datetime.now(UTC)
    entries = [
        {
            "message": f"row {i}",
            "log_level": ("INFO", "WARNING", "ERROR")[i % 3],
            "source_type": "worker",
            "source_id": "w1",
            "timestamp": (now - timedelta(minutes=10)).isoformat(),
        }
        for i in range(30)
    ]
    h.run(insert_logs_batch(entries))
    for event in ("auth_failed", "auth_failed", "config_changed"):
        h.run(audit_append(event, "test", actor="workload"))
