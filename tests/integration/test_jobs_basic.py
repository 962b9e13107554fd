"""The job store's main path: submit -> claim -> complete, its events and its reads."""

from __future__ import annotations

import pytest

from orchestrator.jobs import calls
from orchestrator.jobs.errors import JobError, job_errors
from tests.integration.jobkit import hub


@pytest.fixture
def h(db_url):
    with hub(db_url) as h:
        h.user("alice", "org-1")
        h.user("bob", "org-2")
        yield h


def test_submit_claim_complete_records_one_event_per_transition(h):
    """Each state change writes exactly one job_events row, and the job ends completed."""
    submitted = h.submit("alice", payload={"callable": "pkg.mod:run", "kwargs": {"n": 1}})
    assert submitted.status == "queued" and not submitted.duplicate
    job = h.claim_one("w1")
    assert job.job_id == submitted.job_id
    assert job.attempt == 1 and job.payload == {"callable": "pkg.mod:run", "kwargs": {"n": 1}}
    assert job.user_id == "alice" and job.organization_id == "org-1"
    assert h.status(job.job_id) == ("running", "running")
    outcome = h.run(calls.complete_job(job.job_id, job.lease_token, {"ok": True}))
    assert outcome.accepted and outcome.status == "completed"
    assert h.status(job.job_id) == ("completed", "completed")
    assert h.events(job.job_id) == [
        ("submitted", None, "queued"),
        ("claimed", "queued", "running"),
        ("completed", "running", "completed"),
    ]
    detail = h.run(calls.get_job(job.job_id))
    assert detail.result == {"ok": True}
    assert [e.event_type for e in detail.events] == ["submitted", "claimed", "completed"]
    assert detail.queue is not None and "lease_token" not in detail.queue


def test_claim_prefers_higher_priority_and_returns_a_batch(h):
    """Higher priority first; a batch claim returns several jobs, each with its own token."""
    low = h.submit("alice", priority=10).job_id
    high = h.submit("alice", priority=900).job_id
    mid = h.submit("bob", priority=500).job_id
    jobs = h.claim("w1", max_jobs=10)
    assert [j.job_id for j in jobs] == [high, mid, low]
    assert len({j.lease_token for j in jobs}) == 3
    assert h.claim("w1", max_jobs=10) == []


def test_claim_filters_by_provider_and_job_type(h):
    """Only the asked provider's jobs, and only the listed job types."""
    remote = h.submit("alice", provider="replicate", payload={"model": "x"}).job_id
    train = h.submit("alice", job_type="train").job_id
    h.submit("alice", job_type="render")
    assert [j.job_id for j in h.claim("w1", 5, job_types=["train"])] == [train]
    assert [j.job_id for j in h.claim("d", 5, provider="replicate")] == [remote]


def test_idempotency_key_returns_the_earlier_job(h):
    """The same (user, idempotency_key) submitted twice is one job."""
    first = h.submit("alice", idempotency_key="k1")
    again = h.submit("alice", idempotency_key="k1", priority=5)
    assert again.job_id == first.job_id and again.duplicate
    assert h.one("SELECT count(*) FROM jobs") == 1


def test_list_jobs_pages_by_keyset_newest_first(h):
    """Pages follow one another without gaps or repeats; filters apply."""
    ids = [h.submit("alice" if i % 2 else "bob").job_id for i in range(7)]
    seen, after = [], None
    while True:
        page = h.run(calls.list_jobs(after_job_id=after, row_limit=3))
        seen += [r.job_id for r in page.rows]
        if not page.more:
            break
        after = page.next
    # ids are UUIDv7: newest first, ties within one millisecond broken by the random bits
    assert seen == sorted(ids, reverse=True)
    bobs = h.run(calls.list_jobs(user_id="bob", status="queued", row_limit=100))
    assert {r.user_id for r in bobs.rows} == {"bob"} and len(bobs.rows) == 4


def test_queue_statistics_count_by_state_user_and_organisation(h):
    """Depth by state, running per user and organisation, the oldest waiting job."""
    first = h.submit("alice").job_id
    h.submit("bob")
    h.submit("bob")
    h.claim("w1", 2)
    stats = h.run(calls.queue_statistics())
    assert stats.depth_by_state["queued"] == 1 and stats.depth_by_state["running"] == 2
    assert stats.depth_by_state["completed"] == 0
    assert sum(stats.running_by_user.values()) == 2
    assert stats.running_by_organization.get("org-1") == 1
    assert stats.oldest_waiting is not None and stats.oldest_waiting.job_id != first


def test_queue_depth_is_the_queued_count_of_the_statistics_in_every_state(h):
    """func_queue_depth (the dashboard's cheap count, sql/functions/jobs/reads.sql) counts exactly what the
    statistics call queued: waiting and retry-backoff entries, nothing running or ended."""
    for n in range(6):
        h.submit("alice" if n % 2 else "bob", priority=n)
    done, failed, retried, _still_running = h.claim("w1", 4)
    h.run(calls.complete_job(done.job_id, done.lease_token, {}))
    h.run(calls.fail_job(failed.job_id, failed.lease_token, "boom", retryable=False))
    h.run(calls.fail_job(retried.job_id, retried.lease_token, "flaky"))  # queued, backing off
    h.run(calls.cancel_job(h.submit("alice").job_id, "alice"))
    states = h.run(calls.queue_statistics()).depth_by_state
    assert states["queued"] == 3 and states["running"] == 1
    assert states["completed"] == states["failed"] == states["cancelled"] == 1
    assert h.one("SELECT func_queue_depth()") == states["queued"]


def test_notify_is_sent_on_submit_at_commit(h, db_url):
    """A LISTENing connection hears the provider name when a job becomes claimable."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {calls.NOTIFY_CHANNEL}")
        h.submit("alice", provider="local")
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.payload for n in notes] == ["local"]


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"user_id": "nobody", "job_type": "t", "payload": {"command": "x"}}, "unknown user"),
        (
            {"user_id": "alice", "job_type": "t", "priority": -1, "payload": {"command": "x"}},
            "priority must be an integer from 0 to 1000",
        ),
        (
            {"user_id": "alice", "job_type": "t", "priority": "high", "payload": {"command": "x"}},
            "priority must be",
        ),
        (
            {"user_id": "alice", "job_type": "t", "payload": ["echo"]},
            "payload must be a JSON object",
        ),
        ({"user_id": "alice", "job_type": "t", "payload": {}}, 'exactly one of "command"'),
        (
            {"user_id": "alice", "job_type": "t", "payload": {"command": "  "}},
            "payload.command must be a non-empty",
        ),
        (
            {"user_id": "alice", "job_type": "t", "payload": {"callable": "no_colon"}},
            "module:function",
        ),
        (
            {"user_id": "alice", "job_type": "t", "payload": {"callable": "a:b", "kwargs": [1]}},
            "payload.kwargs",
        ),
        ({"user_id": "alice", "payload": {"command": "x"}}, "job_type is required"),
        (
            {"user_id": "alice", "job_type": "t", "payload": {"command": "x"}, "colour": 1},
            "unknown job key(s): colour",
        ),
        (
            {"user_id": "alice", "job_type": "t", "payload": {"command": "x"}, "max_attempts": 0},
            "max_attempts",
        ),
        (
            {
                "user_id": "alice",
                "job_type": "t",
                "payload": {"command": "x"},
                "estimated_cost": -3,
            },
            "estimated_cost",
        ),
    ],
)
def test_bad_submissions_raise_one_clear_error_and_write_nothing(h, job, message):
    """Each bad input: a JobError naming the problem, SQLSTATE 22xxx or P0001, no rows."""
    from orchestrator.db.calls import Call

    with pytest.raises(JobError) as caught, job_errors():
        h.run(Call("func_submit_job", {"job": job}, lambda raw: raw))
    assert message in str(caught.value)
    assert caught.value.sqlstate.startswith("22") or caught.value.sqlstate == "P0001"
    assert h.one("SELECT count(*) FROM jobs") == 0
    assert h.one("SELECT count(*) FROM job_events") == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (calls.get_job("00000000-0000-0000-0000-000000000001"), "unknown job"),
        (calls.cancel_job("00000000-0000-0000-0000-000000000001", "me"), "unknown job"),
        (
            calls.complete_job(
                "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
            ),
            "unknown job",
        ),
        (
            calls.approve_request("00000000-0000-0000-0000-000000000001", "me"),
            "unknown approval request",
        ),
        (
            calls.set_concurrency_limit("team", "x", 1),
            "unknown limit scope 'team'; accepted: global, organization, user",
        ),
        (calls.set_concurrency_limit("user", "ghost", 1), "unknown user"),
        (calls.set_concurrency_limit("organization", "org-1", -1), "max_running must be >= 0"),
        (calls.claim_jobs("w", max_jobs=0), "max_jobs must be between 1 and 1000"),
        (calls.claim_jobs("", max_jobs=1), "worker_id must be"),
        (calls.list_jobs(status="done"), "unknown job status 'done'"),
        (
            calls.record_provider_status("00000000-0000-0000-0000-000000000001", "exploded"),
            "unknown provider status",
        ),
    ],
)
def test_bad_calls_raise_one_clear_error(h, call, message):
    """Unknown ids and malformed arguments are refused with a message that says why."""
    with pytest.raises(JobError) as caught, job_errors():
        h.run(call)
    assert message in str(caught.value)
