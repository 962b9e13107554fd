"""Leases, retries, release, cancel, the reaper and external providers' status."""

from __future__ import annotations

import time

import pytest

from orchestrator.jobs import calls
from tests.integration.jobkit import hub


@pytest.fixture
def h(db_url):
    with hub(db_url) as h:
        h.user("alice", "org-1")
        yield h


def test_expired_lease_is_reclaimed_and_the_dead_workers_late_reports_are_rejected(h):
    """A worker that stops renewing loses the job when its lease expires; the next claim
    gets it with a new token, and the old worker's complete and fail change nothing."""
    h.set_limit("organization", "org-1", 1)
    job_id = h.submit("alice").job_id
    dead = h.claim_one("w-dead", lease_seconds=1)
    assert h.claim("w-live") == []  # still leased (and the org's one slot is taken)
    time.sleep(1.2)
    live = h.claim_one("w-live")
    assert live.job_id == job_id and live.attempt == 2 and live.lease_token != dead.lease_token
    late = h.run(calls.complete_job(job_id, dead.lease_token, {"from": "dead"}))
    assert (
        not late.accepted
        and late.status == "running"
        and "stale lease token" in (late.reason or "")
    )
    assert not h.run(calls.fail_job(job_id, dead.lease_token, "boom")).accepted
    assert not h.run(calls.release_job(job_id, dead.lease_token)).accepted
    assert h.run(calls.complete_job(job_id, live.lease_token, {"from": "live"})).accepted
    assert h.run(calls.get_job(job_id)).result == {"from": "live"}
    assert h.events(job_id) == [
        ("submitted", None, "queued"),
        ("claimed", "queued", "running"),
        ("lease_expired", "running", "queued"),
        ("claimed", "queued", "running"),
        ("completed", "running", "completed"),
    ]
    assert h.counters() == {("organization", "org-1"): 0}


def test_extending_leases_keeps_jobs_and_reports_the_lost_ones(h):
    """Renewal moves lease_expires_at; a job cancelled meanwhile comes back as lost."""
    first, second = h.submit("alice").job_id, h.submit("alice").job_id
    jobs = h.claim("w1", 2, lease_seconds=5)
    before = h.one("SELECT max(lease_expires_at) FROM job_queue")
    h.run(calls.cancel_job(second, "admin", "no longer needed"))
    renewed = h.run(calls.extend_job_leases("w1", 60, [j.job_id for j in jobs]))
    assert renewed.job_ids == (first,) and renewed.lost == (second,)
    assert h.one("SELECT lease_expires_at FROM job_queue WHERE job_id = %s", [first]) > before
    assert h.run(calls.extend_job_leases("w-other", 60)).extended == 0


def test_release_requeues_without_using_an_attempt(h):
    """A released job is claimable at once with the same attempt number."""
    job_id = h.submit("alice", max_attempts=1).job_id
    job = h.claim_one("w1")
    out = h.run(calls.release_job(job_id, job.lease_token, "SIGTERM"))
    assert out.accepted and out.status == "queued"
    again = h.claim_one("w2")
    assert again.job_id == job_id and again.attempt == 1


def test_failures_retry_with_exponential_backoff_then_fail(h):
    """fail -> queued after 10 s, then 20 s (+ up to 10 % jitter), then failed at max_attempts."""
    job_id = h.submit("alice", max_attempts=3).job_id
    for attempt, base in ((1, 10), (2, 20)):
        job = h.claim_one("w1")
        assert job.attempt == attempt
        out = h.run(calls.fail_job(job_id, job.lease_token, f"boom {attempt}"))
        assert out.accepted and out.status == "queued"
        delay = h.one(
            "SELECT extract(epoch FROM run_after - now()) FROM job_queue WHERE job_id = %s",
            [job_id],
        )
        assert base - 1 <= float(delay) <= base * 1.1 + 1
        assert h.claim("w1") == []  # not before run_after
        h.sql("UPDATE job_queue SET run_after = now() WHERE job_id = %s", [job_id])
    job = h.claim_one("w1")
    out = h.run(calls.fail_job(job_id, job.lease_token, "boom 3"))
    assert out.accepted and out.status == "failed"
    assert h.status(job_id) == ("failed", "failed")
    assert [e[0] for e in h.events(job_id)] == [
        "submitted",
        "claimed",
        "retry_scheduled",
        "claimed",
        "retry_scheduled",
        "claimed",
        "failed",
    ]
    assert h.run(calls.get_job(job_id)).job.error == "boom 3"


def test_a_non_retryable_failure_fails_at_once(h):
    """retryable=false skips the remaining attempts."""
    job_id = h.submit("alice", max_attempts=5).job_id
    job = h.claim_one("w1")
    assert (
        h.run(calls.fail_job(job_id, job.lease_token, "bad input", retryable=False)).status
        == "failed"
    )


def test_cancel_works_in_every_unfinished_state_and_frees_the_slot(h):
    """awaiting_approval, queued and running jobs cancel; a finished one is refused."""
    h.run(calls.upsert_approval_rule("all-train", job_type="train"))
    waiting = h.submit("alice", job_type="train")
    queued = h.submit("alice").job_id
    running = h.submit("alice").job_id
    h.set_limit("user", "alice", 5)
    h.sql(
        "UPDATE job_queue SET claim_key = claim_key - interval '1 day' WHERE job_id = %s", [running]
    )
    job = h.claim_one("w1")
    assert job.job_id == running and h.counters()[("user", "alice")] == 1
    for job_id, before in (
        (waiting.job_id, "awaiting_approval"),
        (queued, "queued"),
        (running, "running"),
    ):
        out = h.run(calls.cancel_job(job_id, "admin", "stop"))
        assert out.accepted and out.previous_status == before
        assert h.events(job_id)[-1] == ("cancelled", before, "cancelled")
    assert (
        h.one("SELECT status FROM approval_requests WHERE job_id = %s", [waiting.job_id])
        == "cancelled"
    )
    assert h.counters()[("user", "alice")] == 0
    assert not h.run(calls.complete_job(running, job.lease_token)).accepted
    again = h.run(calls.cancel_job(running, "admin"))
    assert not again.accepted and again.reason == "the job is already cancelled"


def test_reaper_requeues_jobs_of_dead_workers_and_fails_exhausted_ones(h):
    """A worker without heartbeats is declared dead; its job is requeued even though the
    lease has not expired yet; a job on its last attempt with an expired lease fails."""
    h.sql("SELECT func_worker_heartbeat_with_logs('w-gone', 'busy')")
    requeue = h.submit("alice").job_id
    exhausted = h.submit("alice", max_attempts=1).job_id
    h.sql(
        "UPDATE job_queue SET claim_key = claim_key - interval '1 day' WHERE job_id = %s", [requeue]
    )
    gone = h.claim_one("w-gone", lease_seconds=600)
    assert gone.job_id == requeue
    last = h.claim_one("w-silent", lease_seconds=600)
    h.sql(
        "UPDATE workers SET last_heartbeat_at = now() - interval '1 minute' WHERE worker_id = 'w-gone'"
    )
    h.sql(
        "UPDATE job_queue SET lease_expires_at = now() - interval '1 second' WHERE job_id = %s",
        [exhausted],
    )
    reaped = h.run(calls.reap_dead_workers(30))
    assert reaped.dead_worker_ids == ("w-gone",) and reaped.requeued == 1 and reaped.failed == 1
    assert h.status(requeue) == ("queued", "queued") and h.status(exhausted) == ("failed", "failed")
    assert h.events(requeue)[-1] == ("worker_dead", "running", "queued")
    assert h.events(exhausted)[-1] == ("lease_expired", "running", "failed")
    assert not h.run(calls.complete_job(requeue, gone.lease_token)).accepted
    assert not h.run(calls.complete_job(exhausted, last.lease_token)).accepted
    assert h.one("SELECT status FROM workers WHERE worker_id = 'w-gone'") == "dead"
    assert h.run(calls.reap_dead_workers(30)).requeued == 0


def test_provider_status_is_recorded_on_change_and_terminal_statuses_end_the_job(h):
    """pending/running are recorded once each; completed ends the job and frees its slot;
    a job handed to the provider loses its lease (polling tracks it, no second dispatch)."""
    h.set_limit("organization", "org-1", 1)
    job_id = h.submit("alice", provider="replicate", payload={"model": "m"}).job_id
    h.claim_one("daemon", provider="replicate", lease_seconds=1)
    first = h.run(calls.record_provider_status(job_id, "pending", "rep-123"))
    assert first.changed and first.provider_status == "pending"
    assert h.one("SELECT lease_expires_at FROM job_queue WHERE job_id = %s", [job_id]) is None
    assert not h.run(calls.record_provider_status(job_id, "pending")).changed
    assert h.run(calls.record_provider_status(job_id, "running", details={"progress": 0.5})).changed
    done = h.run(calls.record_provider_status(job_id, "completed", details={"url": "u"}))
    assert done.changed and done.status == "completed"
    assert h.counters() == {("organization", "org-1"): 0}
    assert not h.run(calls.record_provider_status(job_id, "failed")).changed
    assert [e[0] for e in h.events(job_id)] == [
        "submitted",
        "claimed",
        "provider_status",
        "provider_status",
        "completed",
    ]


def test_active_provider_jobs_are_listed_page_by_page_without_a_cap(h):
    """Every queued or running job of the provider appears exactly once across pages."""
    ids = {h.submit("alice", provider="modal", payload={}).job_id for _ in range(25)}
    h.submit("alice")  # local: not listed
    done = h.submit("alice", provider="modal", payload={}).job_id
    job = h.claim("d", 30, provider="modal")
    finished = next(j for j in job if j.job_id == done)
    h.run(calls.complete_job(done, finished.lease_token))
    seen, after = [], None
    while True:
        page = h.run(calls.list_active_provider_jobs("modal", after, row_limit=10))
        seen += [r.job_id for r in page.rows]
        if not page.more:
            break
        after = page.next
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
