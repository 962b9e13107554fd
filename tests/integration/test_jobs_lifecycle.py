"""Issue 15 in the job store's SQL: scheduled jobs, pause, bulk submit, re-run, fenced
dispatch, the expired-lease completion, the reaper and a worker's declared heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.errors import InputRefused as JobError
from orchestrator.jobs import calls
from tests.integration.jobkit import hub


@pytest.fixture
def h(db_url):
    """A hub with users alice and bob (organisation org-1)."""
    with hub(db_url) as h:
        h.user("alice")
        h.user("bob")
        yield h


def entry(h, job_id) -> tuple[str, str]:
    """(jobs.status, job_queue.status)."""
    return h.status(job_id)


def make_due(h, job_id) -> None:
    """Time passes for one scheduled job: its run_after is now in the past."""
    h.sql(
        "UPDATE job_queue SET run_after = now() - interval '1 second' WHERE job_id = %s", [job_id]
    )


def test_a_job_for_later_waits_outside_the_queue_and_runs_when_due(h):
    """run_in_seconds: status queued, entry scheduled, not claimable; the claim says when
    it is due; once due, the next claim moves it into the queue and takes it."""
    later = h.submit(run_in_seconds=3600)
    assert later.run_at is not None
    assert entry(h, later.job_id) == ("queued", "scheduled")
    result = h.run(calls.claim_jobs("w1"))
    assert result.jobs == ()
    assert result.next_run_after == later.run_at
    make_due(h, later.job_id)
    [job] = h.claim()
    assert job.job_id == later.job_id
    assert h.run(calls.claim_jobs("w1")).next_run_after is None


def test_run_at_in_the_past_runs_now_and_bad_times_are_one_line(h):
    """An ISO time already past means now; malformed, too far ahead or both forms: refused."""
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert entry(h, h.submit(run_at=past).job_id) == ("queued", "queued")
    for options, says in [
        ({"run_at": "tomorrow-ish"}, "run_at must be an ISO 8601 time"),
        ({"run_at": "2999-01-01T00:00:00Z"}, "run_at may be at most 366 days ahead"),
        ({"run_in_seconds": -5}, "run_in_seconds must be a number of seconds from 0"),
        ({"run_at": past, "run_in_seconds": 5}, "give run_at or run_in_seconds, not both"),
        ({"timeout_seconds": 0}, "timeout_seconds must be a whole number of seconds from 1"),
    ]:
        with pytest.raises(JobError, match=says):
            h.submit(**options)
    assert h.one("SELECT count(*) FROM jobs") == 1


def test_an_approved_job_for_later_still_waits_for_its_time(h):
    """Approval does not make a job scheduled for tomorrow claimable today."""
    h.run(calls.upsert_approval_rule("all"))
    submitted = h.submit(run_in_seconds=3600)
    h.run(calls.approve_request(submitted.approval_request_id, "bob"))
    assert entry(h, submitted.job_id) == ("queued", "scheduled")
    assert h.claim() == []


def test_a_retry_waits_as_scheduled_and_claims_do_not_walk_past_it(h):
    """A failed attempt's backoff puts the entry in scheduled, outside the claim's
    partial indexes (so a backlog of retries costs a claim nothing); the claim reports
    when the retry is due and takes it then, with its original place in line."""
    first = h.submit()
    job = h.claim_one()
    verdict = h.run(calls.fail_job(job.job_id, job.lease_token, "flaky"))
    assert verdict.status == "queued"
    assert entry(h, first.job_id) == ("queued", "scheduled")
    fresh = h.submit()
    result = h.run(calls.claim_jobs("w1", 5))
    assert [j.job_id for j in result.jobs] == [fresh.job_id]
    assert result.next_run_after == verdict.run_after
    make_due(h, first.job_id)
    assert [j.attempt for j in h.claim()] == [2]
    plan = "\n".join(
        r[0]
        for r in h.sql(
            "EXPLAIN SELECT job_id FROM job_queue WHERE status = 'queued' AND provider = 'local' "
            "ORDER BY claim_key LIMIT 1"
        )
    )
    assert "job_queue_claim_idx" in plan or "Seq Scan" in plan
    assert h.one("SELECT count(*) FROM job_queue WHERE status = 'queued'") == 0


def test_a_paused_queue_gives_nothing_until_resumed(h):
    """Pausing a provider stops its claims (its jobs stay queued); pausing one job type
    leaves the others claimable; resume brings them back."""
    render = h.submit(job_type="render")
    train = h.submit(job_type="train")
    h.run(calls.pause_queue("local", paused_by="ops", reason="maintenance"))
    result = h.run(calls.claim_jobs("w1", 5))
    assert (result.jobs, result.paused) == ((), True)
    h.run(calls.resume_queue("local"))
    h.run(calls.pause_queue("local", "render"))
    assert [j.job_id for j in h.claim(max_jobs=5)] == [train.job_id]
    assert h.run(calls.resume_queue("local", "render")).paused is False
    assert [j.job_id for j in h.claim(max_jobs=5)] == [render.job_id]
    assert h.run(calls.resume_queue("local", "render")).paused is True  # was not paused


def test_bulk_submit_is_all_or_nothing_and_names_the_refused_job(h):
    """Three good jobs go in together; one bad one among them sends nothing back but the
    index and the reason."""
    good = [calls.job_object("alice", "t", {"command": f"echo {n}"}) for n in range(3)]
    result = h.run(calls.submit_jobs(good))
    assert result.submitted == 3 and len({j.job_id for j in result.jobs}) == 3
    bad = [*good, calls.job_object("alice", "t", {"command": "x"}, priority=5000)]
    with pytest.raises(JobError, match=r"^jobs\[3\]: priority must be an integer from 0 to 1000"):
        h.run(calls.submit_jobs(bad))
    with pytest.raises(JobError, match="at most 1000 are accepted per call"):
        h.run(calls.submit_jobs([good[0]] * 1001))
    assert h.one("SELECT count(*) FROM jobs") == 3


def test_a_failed_or_cancelled_job_is_re_run_as_a_new_job(h):
    """Re-run: a new job with the same payload, pointing back; a job still queued (or
    completed) cannot be re-run."""
    original = h.submit(payload={"command": "echo again"}, timeout_seconds=60)
    with pytest.raises(JobError, match="is queued; only a failed or cancelled job can be re-run"):
        h.run(calls.rerun_job(original.job_id))
    h.run(calls.cancel_job(original.job_id, "alice"))
    again = h.run(calls.rerun_job(original.job_id, "alice"))
    assert again.job_id != original.job_id and again.rerun_of == original.job_id
    payload, rerun_of, timeout = h.sql(
        "SELECT payload, rerun_of, timeout_seconds FROM jobs WHERE job_id = %s", [again.job_id]
    )[0]
    assert (payload, str(rerun_of), timeout) == ({"command": "echo again"}, original.job_id, 60)
    [claimed] = h.claim()
    assert claimed.job_id == again.job_id and claimed.timeout_seconds == 60


def test_a_dispatch_with_a_stale_lease_cannot_record_its_submission(h):
    """The daemon's dispatch is fenced as workers are: once its claim lapsed and another
    claim holds the job, recording with the old token changes nothing."""
    submitted = h.submit(provider="cloud", payload={"model": "x"})
    first = h.claim_one("provider:cloud", provider="cloud", lease_seconds=1)
    h.sql(
        "UPDATE job_queue SET lease_expires_at = now() - interval '1 s' WHERE job_id = %s",
        [first.job_id],
    )
    second = h.claim_one("provider:cloud", provider="cloud", lease_seconds=60)
    stale = h.run(
        calls.record_provider_status(first.job_id, "queued", "remote-1", {}, first.lease_token)
    )
    assert (stale.accepted, stale.changed) == (False, False)
    assert "stale lease token" in (stale.reason or "")
    fresh = h.run(
        calls.record_provider_status(second.job_id, "queued", "remote-2", {}, second.lease_token)
    )
    assert (fresh.accepted, fresh.changed) == (True, True)
    assert (
        h.one("SELECT provider_job_id FROM jobs WHERE job_id = %s", [submitted.job_id])
        == "remote-2"
    )


def test_an_expired_lease_nobody_reclaimed_still_completes(h):
    """README, "Leases, retries, dead workers": past lease_expires_at, the token is still
    current until someone requeues the job, so the finished work is accepted; once the
    job was claimed again, the same report is refused."""
    h.submit()
    job = h.claim_one(lease_seconds=1)
    h.sql(
        "UPDATE job_queue SET lease_expires_at = now() - interval '1 s' WHERE job_id = %s",
        [job.job_id],
    )
    assert h.run(calls.complete_job(job.job_id, job.lease_token)).accepted is True
    h.submit()
    lapsed = h.claim_one(lease_seconds=1)
    h.sql(
        "UPDATE job_queue SET lease_expires_at = now() - interval '1 s' WHERE job_id = %s",
        [lapsed.job_id],
    )
    again = h.claim_one("w2")
    assert again.job_id == lapsed.job_id
    assert h.run(calls.complete_job(lapsed.job_id, lapsed.lease_token)).accepted is False


def test_the_reaper_waits_for_three_of_a_workers_own_heartbeats(h):
    """A worker that declares a 20 s heartbeat is not dead after 30 s of silence (its
    job would run twice); after 60 s it is."""
    from orchestrator.logs import calls as log_calls

    h.run(log_calls.heartbeat_call("slow", "busy", None, {"heartbeat_seconds": 20}))
    h.run(log_calls.heartbeat_call("fast", "busy"))
    h.sql("UPDATE workers SET last_heartbeat_at = now() - interval '40 s'")
    assert h.run(calls.reap_dead_workers(30)).dead_worker_ids == ("fast",)
    h.sql("UPDATE workers SET last_heartbeat_at = now() - interval '61 s' WHERE worker_id = 'slow'")
    assert h.run(calls.reap_dead_workers(30)).dead_worker_ids == ("slow",)
