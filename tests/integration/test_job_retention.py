"""Retention of the job history (``func_prune_jobs``): old finished jobs go with their
queue entries and events; unfinished jobs are never touched, also while claims,
completions and cancels run at the same time."""

from __future__ import annotations

import threading

import pytest

from orchestrator.jobs import calls
from tests.integration.jobkit import hub


def age_finished(h, days: int) -> None:
    """Every finished job finished ``days`` ago (the job's finished_at and its queue
    entry's run_after, which the hub sets to the same moment when a job finishes)."""
    h.sql(
        "UPDATE jobs SET finished_at = now() - make_interval(days => %s) "
        "WHERE status IN ('completed', 'failed', 'cancelled')",
        [days],
    )
    h.sql(
        "UPDATE job_queue q SET run_after = j.finished_at FROM jobs j "
        "WHERE j.job_id = q.job_id AND q.status IN ('completed', 'failed', 'cancelled')"
    )


def test_old_finished_jobs_go_with_their_history_and_the_rest_stays(db_url):
    """Completed, failed and cancelled jobs older than the retention are deleted with
    their queue entry and events; a recent one, a queued and a running one stay; a
    cancelled job still to be cancelled at its provider stays; so do live workers."""
    with hub(db_url) as h:
        h.user("alice")
        done = h.submit()
        job = h.claim_one()
        h.run(calls.complete_job(job.job_id, job.lease_token))
        failed = h.submit(max_attempts=1)
        job = h.claim_one()
        h.run(calls.fail_job(job.job_id, job.lease_token, "no"))
        remote = h.submit(provider="cloud", payload={})
        job = h.claim_one("provider:cloud", provider="cloud")
        h.run(calls.record_provider_status(job.job_id, "running", "r-1"))
        h.run(calls.cancel_job(remote.job_id, "alice"))
        age_finished(h, 40)
        recent = h.submit()
        job = h.claim_one()
        h.run(calls.complete_job(job.job_id, job.lease_token))
        queued = h.submit()
        running = h.submit()
        h.claim_one()
        h.sql(
            "INSERT INTO workers (worker_id, status, last_heartbeat_at) VALUES "
            "('gone', 'dead', now() - interval '40 days'), ('old-but-alive', 'idle', now() - interval '40 days')"
        )

        result = h.run(calls.prune_jobs(30))

        assert (result.deleted_jobs, result.deleted_workers, result.more) == (2, 1, False)
        left = {row[0] for row in h.sql("SELECT job_id::text FROM jobs")}
        assert left == {remote.job_id, recent.job_id, queued.job_id, running.job_id}
        assert done.job_id not in left and failed.job_id not in left
        orphans = h.one(
            "SELECT count(*) FROM job_events e WHERE NOT EXISTS "
            "(SELECT 1 FROM jobs j WHERE j.job_id = e.job_id)"
        )
        assert orphans == 0
        assert h.one("SELECT count(*) FROM job_queue") == 4
        assert {r[0] for r in h.sql("SELECT worker_id FROM workers")} == {"old-but-alive"}
        with pytest.raises(Exception, match="retention_days must be from 1 to 36600"):
            h.run(calls.prune_jobs(0))


def test_pruning_never_touches_an_unfinished_job_under_concurrent_claims(db_url):
    """300 old finished jobs and 300 live ones; four threads claim and complete (their
    completions are recent) and cancel, while retention runs in small batches. Every
    live job survives with all its events; every old finished one is gone."""
    with hub(db_url) as h:
        for user in ("alice", "bob"):
            h.user(user)
        h.run(calls.submit_jobs([calls.job_object("alice", "t", {"command": "x"})] * 300))
        while jobs := h.claim(max_jobs=100):
            for job in jobs:
                h.run(calls.complete_job(job.job_id, job.lease_token))
        age_finished(h, 90)
        old = {r[0] for r in h.sql("SELECT job_id::text FROM jobs")}
        live = {
            j.job_id
            for j in h.run(
                calls.submit_jobs([calls.job_object("bob", "t", {"command": "y"})] * 300)
            ).jobs
        }
        stop = threading.Event()
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                with hub(db_url) as mine:
                    while not stop.is_set():
                        jobs = mine.claim(f"w{n}", 3)
                        for i, job in enumerate(jobs):
                            if i == 2:
                                mine.run(calls.cancel_job(job.job_id, "bob"))
                            elif i == 1:
                                continue  # stays running
                            else:
                                mine.run(calls.complete_job(job.job_id, job.lease_token))
                        if not jobs:
                            return
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        pruned = 0
        while True:
            result = h.run(calls.prune_jobs(30, batch_size=7))
            pruned += result.deleted_jobs
            if not result.more and not any(t.is_alive() for t in threads):
                break
        stop.set()
        for t in threads:
            t.join()
        assert errors == []
        remaining = {r[0] for r in h.sql("SELECT job_id::text FROM jobs")}
        assert remaining == live
        assert pruned == len(old) == 300
        assert h.one("SELECT count(*) FROM job_queue") == 300
        # each live job kept its whole history: submitted, and a claim for all but none
        short = h.one(
            "SELECT count(*) FROM jobs j WHERE (SELECT count(*) FROM job_events e "
            "WHERE e.job_id = j.job_id AND e.event_type = 'submitted') <> 1"
        )
        assert short == 0
