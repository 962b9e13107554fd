"""Completions in one call (``func_complete_jobs``), and with the next claim in the same
call and commit (``func_complete_jobs_and_claim``): each completion fenced by its own
token, the claim seeing the slots they free, an error rolling back both."""

from __future__ import annotations

import json

import pytest

from orchestrator.jobs import calls
from orchestrator.jobs.errors import JobError, job_errors
from tests.integration.jobkit import hub, running_counts


@pytest.fixture
def h(db_url):
    with hub(db_url) as h:
        h.user("alice", "org-1")
        h.user("bob", "org-2")
        yield h


def test_complete_jobs_fences_each_completion_by_its_own_token(h):
    """A stale token is refused for its job only; the others complete with their results."""
    first, second = h.submit("alice").job_id, h.submit("bob").job_id
    a, b = h.claim("w1", max_jobs=2)
    verdicts = h.run(
        calls.complete_jobs([(a.job_id, a.lease_token, {"n": 1}), (b.job_id, a.lease_token, None)])
    )
    assert [v.accepted for v in verdicts] == [True, False]
    assert "stale lease token" in (verdicts[1].reason or "")
    assert h.status(first) == ("completed", "completed")
    assert h.status(second) == ("running", "running")
    assert h.one("SELECT result FROM jobs WHERE job_id = %s", [first]) == {"n": 1}


def test_each_verdict_stays_at_its_own_position_when_a_refused_one_comes_first(h):
    """The accepted verdicts are built by the writing statement and the refused ones by a
    second: a refusal ahead of two acceptances keeps every verdict at its own entry."""
    ids = [h.submit(user).job_id for user in ("alice", "bob", "alice")]
    a, b, c = h.claim("w1", max_jobs=3)
    entries = [
        {"job_id": str(b.job_id), "lease_token": str(a.lease_token)},
        {"job_id": str(a.job_id), "lease_token": str(a.lease_token)},
        {"job_id": str(c.job_id), "lease_token": str(c.lease_token), "result": {"n": 3}},
    ]
    answer = h.one("SELECT func_complete_jobs(%s::jsonb)", [json.dumps(entries)])
    got = [(r["job_id"], r["accepted"], r["status"], r.get("attempt")) for r in answer["results"]]
    assert got == [
        (str(b.job_id), False, "running", None),
        (str(a.job_id), True, "completed", 1),
        (str(c.job_id), True, "completed", 1),
    ]
    assert sorted(h.status(j) for j in ids) == sorted(
        [("completed", "completed"), ("completed", "completed"), ("running", "running")]
    )


@pytest.mark.parametrize(
    "spelling",
    [
        str.upper,
        lambda u: u.replace("-", ""),
        lambda u: "{" + u + "}",
        lambda u: u.replace("-", "")[:4] + "-" + u.replace("-", "")[4:],
    ],
    ids=["upper", "no-hyphens", "braces", "hyphen-after-4"],
)
def test_every_spelling_postgres_reads_as_a_uuid_is_accepted(h, spelling):
    """The ids are checked by pattern before the cast: each form uuid_in reads passes."""
    h.submit("alice")
    job = h.claim_one("w1")
    entry = {"job_id": spelling(str(job.job_id)), "lease_token": spelling(str(job.lease_token))}
    answer = h.one("SELECT func_complete_jobs(%s::jsonb)", [json.dumps([entry])])
    assert [r["accepted"] for r in answer["results"]] == [True]


@pytest.mark.parametrize(
    "bad", ["0123-45670123456701234567012345670", "{0123456701234567012345670123456}", "x" * 32]
)
def test_an_id_postgres_would_not_read_is_refused_in_one_line(h, bad):
    """A hyphen out of place, one digit short in braces, no hex at all: refused."""
    h.submit("alice")
    job = h.claim_one("w1")
    entry = {"job_id": bad, "lease_token": job.lease_token}
    with pytest.raises(JobError, match=r"needs job_id \(a UUID\)"), job_errors():
        h.one("SELECT func_complete_jobs(%s::jsonb)", [json.dumps([entry])])
    assert h.status(job.job_id) == ("running", "running")


def test_completions_and_the_next_claim_share_one_call(h):
    """The completions are recorded (events, results) and the claim returns the next jobs
    with their own leases, in claim order."""
    done = h.submit("alice", priority=900).job_id
    later = [h.submit("alice", priority=p).job_id for p in (500, 100)]
    job = h.claim_one("w1")
    assert job.job_id == done
    both = h.run(calls.complete_jobs_and_claim([(job.job_id, job.lease_token, {"ok": 1})], "w1", 5))
    assert [v.accepted for v in both.verdicts] == [True]
    assert h.status(done) == ("completed", "completed")
    assert [j.job_id for j in both.claim.jobs] == later
    assert all(j.attempt == 1 and j.lease_token for j in both.claim.jobs)
    assert [h.status(j) for j in later] == [("running", "running")] * 2
    assert h.events(done)[-1] == ("completed", "running", "completed")
    # a completion with nothing left to claim is still a completion
    rest = [(j.job_id, j.lease_token, None) for j in both.claim.jobs]
    empty = h.run(calls.complete_jobs_and_claim(rest, "w1", 5))
    assert [v.accepted for v in empty.verdicts] == [True, True]
    assert empty.claim.jobs == ()


def test_the_claim_sees_the_slot_its_completion_frees(h):
    """alice may run one job at a time: completing it and claiming in one transaction
    takes her next job at once, and the counter never exceeds the limit."""
    h.set_limit("user", "alice", 1)
    first, second = h.submit("alice").job_id, h.submit("alice").job_id
    job = h.claim_one("w1")
    assert job.job_id == first and h.claim("w2") == []  # her slot is taken
    both = h.run(calls.complete_jobs_and_claim([(job.job_id, job.lease_token, None)], "w1", 5))
    assert [j.job_id for j in both.claim.jobs] == [second]
    assert h.counters()[("user", "alice")] == 1 == running_counts(h)[("user", "alice")]


def test_a_refused_claim_rolls_the_completions_back(h):
    """One call, one transaction: an invalid claim argument raises and the job it would
    have completed is still running under its lease (nothing half done)."""
    job_id = h.submit("alice").job_id
    job = h.claim_one("w1")
    with pytest.raises(JobError, match="max_jobs must be between 0 and 1000"), job_errors():
        h.run(calls.complete_jobs_and_claim([(job.job_id, job.lease_token, None)], "w1", 1001))
    assert h.status(job_id) == ("running", "running")
    again = h.run(calls.complete_jobs_and_claim([(job.job_id, job.lease_token, None)], "w1", 1))
    assert again.verdicts[0].accepted


def test_max_jobs_zero_completes_and_claims_nothing(h):
    """max_jobs 0: the completions only (what func_complete_jobs does), no claim made
    even with a job waiting; the answer carries no claim."""
    h.submit("alice")
    waiting = h.submit("alice").job_id
    job = h.claim_one("w1")
    raw = h.one(
        "SELECT func_complete_jobs_and_claim(jsonb_build_array(jsonb_build_object("
        "'job_id', %s::text, 'lease_token', %s::text)), 'w1', 0)",
        [str(job.job_id), str(job.lease_token)],
    )
    assert [r["accepted"] for r in raw["results"]] == [True] and "claim" not in raw
    assert h.status(waiting) == ("queued", "queued")


def test_a_stale_token_in_the_batch_does_not_stop_the_claim(h):
    """A worker wrongly declared dead reports late: refused for that job, and the claim
    that came with it still happens."""
    h.submit("alice")
    stale = h.claim_one("w1", lease_seconds=1)
    h.sql("UPDATE job_queue SET lease_expires_at = now() - interval '1 second'")
    retaken = h.claim_one("w2")  # the lease expired: requeued and claimed again
    assert retaken.job_id == stale.job_id and retaken.attempt == 2
    nxt = h.submit("bob").job_id
    both = h.run(calls.complete_jobs_and_claim([(stale.job_id, stale.lease_token, None)], "w1", 1))
    assert not both.verdicts[0].accepted
    assert [j.job_id for j in both.claim.jobs] == [nxt]
    assert h.status(stale.job_id) == ("running", "running")  # w2's run goes on


def test_a_job_listed_twice_is_completed_once(h):
    """The second entry finds the job completed by the first, as a second call would;
    one completed event, the first entry's result."""
    job_id = h.submit("alice").job_id
    job = h.claim_one("w1")
    verdicts = h.run(
        calls.complete_jobs(
            [(job.job_id, job.lease_token, {"n": 1}), (job.job_id, job.lease_token, {"n": 2})]
        )
    )
    assert [(v.accepted, v.status) for v in verdicts] == [(True, "completed"), (False, "completed")]
    assert "the job is completed" in (verdicts[1].reason or "")
    assert [e for e in h.events(job_id) if e[0] == "completed"] == [
        ("completed", "running", "completed")
    ]
    assert h.one("SELECT result FROM jobs WHERE job_id = %s", [job_id]) == {"n": 1}


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            {"job_id": "nope", "lease_token": None},
            r"needs job_id \(a UUID\), lease_token \(a UUID\)",
        ),
        ({"job_id": "JOB", "lease_token": "also-not-a-uuid"}, r"lease_token \(a UUID\)"),
        ({"job_id": "JOB"}, "lease_token is required"),
        ({"job_id": "JOB", "lease_token": "TOKEN", "result": [1]}, r"jobs\[1\]: result must be"),
        (
            {"job_id": "018f0000-0000-7000-8000-000000000000", "lease_token": "TOKEN"},
            "unknown job 018f0000-0000-7000-8000-000000000000",
        ),
    ],
)
def test_a_bad_entry_is_refused_by_name_and_nothing_is_completed(h, entry, error):
    """One bad entry: one line naming it; the good entry before it is not completed."""
    h.submit("alice")
    h.submit("bob")
    good, other = h.claim("w1", max_jobs=2)
    bad = {
        k: (v.replace("JOB", other.job_id).replace("TOKEN", other.lease_token))
        if isinstance(v, str)
        else v
        for k, v in entry.items()
    }
    first = {"job_id": good.job_id, "lease_token": good.lease_token}
    with pytest.raises(JobError, match=error), job_errors():
        h.one("SELECT func_complete_jobs(%s::jsonb)", [json.dumps([first, bad])])
    assert h.status(good.job_id) == ("running", "running")
