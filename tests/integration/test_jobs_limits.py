"""Concurrency limits of each scope, exact counters, aging, and the contention test."""

from __future__ import annotations

import random
import threading

import pytest

from orchestrator.jobs import calls
from tests.integration.jobkit import hub, running_counts


@pytest.fixture
def h(db_url):
    with hub(db_url) as h:
        h.user("alice", "org-1")
        h.user("carol", "org-1")
        h.user("bob", "org-2")
        yield h


def test_global_limit(h):
    """No more than the global limit run at once, whoever submitted."""
    h.set_limit("global", None, 2)
    for user in ("alice", "bob", "carol", "bob"):
        h.submit(user)
    first = h.claim("w1", 10)
    assert len(first) == 2 and h.claim("w2", 10) == []
    h.run(calls.complete_job(first[0].job_id, first[0].lease_token))
    assert len(h.claim("w2", 10)) == 1


def test_organisation_limit_counts_all_its_users(h):
    """alice and carol share org-1's single slot; bob's org-2 is not limited."""
    h.set_limit("organization", "org-1", 1)
    for user in ("alice", "carol", "alice", "bob", "bob"):
        h.submit(user)
    claimed = h.claim("w1", 10)
    assert sorted(j.organization_id for j in claimed) == ["org-1", "org-2", "org-2"]
    assert h.counters() == {("organization", "org-1"): 1}


def test_user_limit(h):
    """A user limit holds while the user's organisation still has room."""
    h.set_limit("user", "alice", 1)
    for user in ("alice", "alice", "carol"):
        h.submit(user)
    assert sorted(j.user_id for j in h.claim("w1", 10)) == ["alice", "carol"]


def test_a_limit_set_while_jobs_run_starts_from_the_running_count(h):
    """Setting, lowering and removing a limit; the counter starts exact."""
    for _ in range(3):
        h.submit("alice")
    running = h.claim("w1", 2)
    assert h.run(calls.set_concurrency_limit("user", "alice", 2)).running == 2
    assert h.claim("w1", 10) == []
    removed = h.run(calls.set_concurrency_limit("user", "alice", None))
    assert removed.max_running is None and h.counters() == {}
    assert len(h.claim("w1", 10)) == 1
    assert h.run(calls.set_concurrency_limit("organization", "org-1", 0)).running == 3
    h.run(calls.complete_job(running[0].job_id, running[0].lease_token))
    assert h.counters() == {("organization", "org-1"): 2}


def test_aging_lets_a_low_priority_job_overtake_after_waiting(h):
    """Effective priority = priority + seconds waited / 10: a priority-0 job that waited
    10,010 s goes before a fresh priority-1000 one, and one that waited 9,990 s does not."""
    old = h.submit("alice", priority=0).job_id
    fresh = h.submit("bob", priority=1000).job_id
    shift = "UPDATE job_queue SET enqueued_at = enqueued_at - %s::interval, claim_key = claim_key - %s::interval WHERE job_id = %s"
    h.sql(shift, ["9990 seconds", "9990 seconds", old])
    assert h.claim_one("w1").job_id == fresh
    again = h.submit("bob", priority=1000).job_id
    h.sql(shift, ["20 seconds", "20 seconds", old])  # 10,010 s in all
    assert h.claim_one("w1").job_id == old
    assert h.claim_one("w1").job_id == again


def test_counters_stay_exact_through_a_storm_of_every_transition(h, db_url):
    """Eight threads claim, complete, fail, release, cancel, let leases expire and reap at
    random under all three scopes; afterwards every counter equals the running count."""
    h.set_limit("global", None, 6)
    h.set_limit("organization", "org-1", 3)
    h.set_limit("user", "bob", 2)
    users = ("alice", "carol", "bob")
    h.sql(
        "SELECT func_submit_job(jsonb_build_object('user_id', (%s::text[])[1 + i %% 3], 'job_type', 't', "
        "'max_attempts', 5, 'payload', jsonb_build_object('command', 'true'))) FROM generate_series(1, 600) i",
        [list(users)],
    )
    errors: list[BaseException] = []

    def storm(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with hub(db_url) as mine:
                for _ in range(60):
                    jobs = mine.claim(
                        f"w{seed}", rnd.choice((1, 3)), lease_seconds=rnd.choice((1, 30))
                    )
                    for job in jobs:
                        action = rnd.random()
                        if action < 0.4:
                            mine.run(calls.complete_job(job.job_id, job.lease_token))
                        elif action < 0.55:
                            mine.run(calls.fail_job(job.job_id, job.lease_token, "x"))
                        elif action < 0.7:
                            mine.run(calls.release_job(job.job_id, job.lease_token))
                        elif action < 0.8:
                            mine.run(calls.cancel_job(job.job_id, "storm"))
                        elif action < 0.9:
                            mine.run(calls.reap_dead_workers(30))
                        # else: keep it running (its lease may expire and be reclaimed)
                    if rnd.random() < 0.1:
                        # skip the backoff of retried jobs (SKIP LOCKED: the test must not
                        # take part in the lock order it is checking)
                        mine.sql(
                            "UPDATE job_queue SET run_after = now() WHERE job_id IN (SELECT job_id "
                            "FROM job_queue WHERE status = 'queued' AND run_after > now() "
                            "FOR UPDATE SKIP LOCKED)"
                        )
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=storm, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert h.counters() == running_counts(h)
    assert h.one("SELECT count(*) FROM job_queue WHERE status = 'running'") <= 6
    # every job's events form one unbroken chain of transitions ending in its status
    broken = h.sql(
        """SELECT e.job_id FROM job_events e
            WHERE e.from_status IS DISTINCT FROM (
                  SELECT p.to_status FROM job_events p WHERE p.job_id = e.job_id AND p.event_id < e.event_id
                   ORDER BY p.event_id DESC LIMIT 1)
              AND e.event_type <> 'provider_status'"""
    )
    assert broken == []
    assert (
        h.one(
            """SELECT count(*) FROM jobs j WHERE j.status <> (SELECT e.to_status FROM job_events e
            WHERE e.job_id = j.job_id ORDER BY e.event_id DESC LIMIT 1)"""
        )
        == 0
    )
