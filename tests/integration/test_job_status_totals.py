"""The job counters folded from job_events equal the jobs table, always (folded or not,
whatever order transactions commit in), and a rebuild from the events gives the same
numbers."""

from __future__ import annotations

import time

import pytest

from orchestrator.jobs import calls
from orchestrator.ops.calls import ops_metrics
from tests.integration.jobkit import hub
from tests.support.counters import COUNTED, FOLDED, PENDING
from tests.support.workload import mixed_workload


def _per_status(h, counted: str) -> dict[str, int]:
    """Jobs per status from transition counts: transitions in minus transitions out."""
    rows = h.sql(
        f"WITH c AS ({counted}) SELECT status, sum(n)::bigint FROM ("
        " SELECT to_status AS status, transitions AS n FROM c"
        " UNION ALL SELECT from_status, -transitions FROM c WHERE from_status <> ''"
        ") x GROUP BY 1"
    )
    return {status: n for status, n in rows if n}


def totals_by_status(h) -> dict[str, int]:
    """Jobs per status from the counters and the events not folded yet (as a scrape)."""
    return _per_status(h, COUNTED)


def folded_totals(h) -> dict[str, int]:
    """Jobs per status from job_status_totals alone (what the folds counted)."""
    return _per_status(h, FOLDED)


def pending(h) -> int:
    """Transitions written since the last fold."""
    return h.one(f"SELECT coalesce(sum(transitions), 0)::bigint FROM ({PENDING}) p")


def fold_all(h, timeout: float = 60) -> None:
    """Folds until nothing is pending. The fold stops below the oldest transaction still
    running anywhere on the server (another test's, a database being cloned): that
    delays a count, never loses one, so wait it out."""
    deadline = time.monotonic() + timeout
    while True:
        h.sql("SELECT func_fold_job_counters()")
        if pending(h) == 0:
            return
        assert time.monotonic() < deadline, "the fold did not catch up"
        time.sleep(0.05)


def test_counters_equal_the_jobs_table_after_a_mixed_workload(db_url):
    """Every status of the workload, counted exactly, also through func_ops_metrics."""
    with hub(db_url) as h:
        mixed_workload(h)
        truth = dict(h.sql("SELECT status, count(*) FROM jobs GROUP BY 1"))
        assert len(truth) >= 5  # the workload reaches most statuses
        assert totals_by_status(h) == truth
        metrics = h.run(ops_metrics(["jobs", "provider"]))
        assert {s: n for s, n in metrics["jobs_by_status"].items() if n} == truth
        assert metrics["jobs_submitted"] == h.one("SELECT count(*) FROM jobs")
        active = dict(
            h.sql(
                "SELECT provider, count(*) FROM jobs WHERE status IN ('queued', 'running') GROUP BY 1"
            )
        )
        assert {
            p: v["jobs"] for p, v in metrics["active_by_provider"].items() if v["jobs"]
        } == active
        ran = h.one(
            "SELECT count(*) FROM jobs WHERE status IN ('completed', 'failed', 'cancelled') "
            "AND started_at IS NOT NULL"
        )
        assert sum(v["run_count"] for v in metrics["jobs_finished"].values()) == ran
        assert metrics["queue"]["depth"] == h.one(
            "SELECT count(*) FROM job_queue WHERE status = 'queued'"
        )


def test_a_rebuild_from_the_events_gives_the_same_totals(db_url):
    """hub_internal.func_job_status_totals_rebuild() recounts from job_events."""
    with hub(db_url) as h:
        mixed_workload(h)
        before = totals_by_status(h)
        h.sql("SELECT hub_internal.func_job_status_totals_rebuild()")
        assert totals_by_status(h) == before
        assert pending(h) == 0
        assert folded_totals(h) == before  # the rebuild counted every event itself


def test_provider_words_are_not_counted_as_job_statuses(db_url):
    """A provider_status event ('running' at the provider) moves no job counter."""
    with hub(db_url) as h:
        h.user("carol")
        h.submit("carol", provider="cloud-b")
        job = h.claim("d", provider="cloud-b")[0]
        before = totals_by_status(h)
        h.run(calls.record_provider_status(job.job_id, "queued", "p-9"))
        assert h.one("SELECT count(*) FROM job_events WHERE event_type = 'provider_status'") == 1
        assert totals_by_status(h) == before == {"running": 1}


def test_counts_stay_exact_while_scrapes_fold_and_workers_claim(db_url):
    """Four claimers complete 400 jobs while two scrapers call func_ops_metrics (which
    folds the deltas) in a loop: no transition is lost or counted twice."""
    import threading

    from orchestrator.db.psycopg import PsycopgExecutor

    with hub(db_url) as h:
        for n in range(4):
            h.user(f"u{n}")
        for i in range(400):
            h.submit(f"u{i % 4}")
    done = threading.Event()
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        try:
            with hub(db_url) as h:
                while jobs := h.claim(name, max_jobs=3):
                    for job in jobs:
                        h.run(calls.complete_job(job.job_id, job.lease_token))
        except BaseException as error:
            errors.append(error)

    def scraper() -> None:
        try:
            with PsycopgExecutor.connect(db_url) as db:
                while not done.is_set():
                    db.run(ops_metrics(["jobs"]))
        except BaseException as error:
            errors.append(error)

    scrapers = [threading.Thread(target=scraper) for _ in range(2)]
    claimers = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in scrapers + claimers:
        thread.start()
    for thread in claimers:
        thread.join(120)
    done.set()
    for thread in scrapers:
        thread.join(30)
    assert errors == []
    with hub(db_url) as h:
        assert totals_by_status(h) == {"completed": 400}
        final = h.run(ops_metrics(["jobs"]))
        assert final["jobs_by_status"]["completed"] == 400 and final["jobs_submitted"] == 400
        fold_all(h)
        assert folded_totals(h) == {"completed": 400}


def test_an_event_of_an_older_transaction_committed_after_a_fold_is_counted_once(db_url):
    """Transaction A takes its id, then B submits and completes jobs and a fold runs
    while A is still open: the fold stops below A (the horizon), so when A's event
    (whose tx sorts before B's) commits later, the next fold counts it, and B's events
    are counted once, not again."""
    import psycopg

    with hub(db_url) as h:
        h.user("alice")
        h.user("bob")
    with psycopg.connect(db_url) as a, hub(db_url) as h:
        a.execute("SELECT pg_current_xact_id()")  # A holds an id older than B's
        done = h.submit("bob").job_id
        job = h.claim_one("w1")
        assert job.job_id == done
        h.run(calls.complete_job(job.job_id, job.lease_token))
        h.sql("SELECT func_fold_job_counters()")
        assert pending(h) > 0  # B's events wait behind A, counted by the scrape meanwhile
        assert totals_by_status(h) == {"completed": 1}
        a.execute(
            "SELECT func_submit_job(jsonb_build_object('user_id', 'alice', 'job_type', 't',"
            " 'payload', jsonb_build_object('command', 'true')))"
        )
        a.commit()
        assert totals_by_status(h) == {"completed": 1, "queued": 1}
        fold_all(h)
        assert folded_totals(h) == {"completed": 1, "queued": 1}


def test_the_upgrade_from_the_trigger_keeps_every_count(db_url):
    """A hub of the trigger's days: part of the counts in job_status_totals, the rest
    still in job_status_deltas, no position. Migration 0095 adds the deltas to the
    totals, drops the delta table and starts folding after the events that exist: the
    counts stay equal to the jobs table, before and after new events."""
    from orchestrator.db.schema_files import sql_dir

    with hub(db_url) as h:
        mixed_workload(h)
        fold_all(h)
        truth = dict(h.sql("SELECT status, count(*) FROM jobs GROUP BY 1"))
        assert folded_totals(h) == truth
        h.sql(
            "CREATE TABLE job_status_deltas AS SELECT provider, from_status, to_status,"
            " transitions, run_seconds, run_count, estimated_cost FROM job_status_totals"
            " WHERE to_status IN ('completed', 'running')"
        )
        h.sql("DELETE FROM job_status_totals WHERE to_status IN ('completed', 'running')")
        h.sql("DELETE FROM job_status_fold")
        h.sql((sql_dir() / "migrations" / "0095_job_counters_from_events.sql").read_text())
        assert h.one("SELECT to_regclass('public.job_status_deltas')") is None
        assert pending(h) == 0
        assert folded_totals(h) == truth
        h.submit("alice")
        assert totals_by_status(h) == {**truth, "queued": truth.get("queued", 0) + 1}
        fold_all(h)
        assert folded_totals(h) == {**truth, "queued": truth.get("queued", 0) + 1}


def test_a_fold_takes_at_most_max_events_and_says_when_more_are_left(db_url):
    """Each call folds a bounded number of events, continuing where the last one
    stopped; the counts are exact at every step (folded plus pending)."""
    with hub(db_url) as h:
        h.user("alice")
        fold_all(h)
        for _ in range(3):
            h.submit("alice")
        truth = dict(h.sql("SELECT status, count(*) FROM jobs GROUP BY 1"))
        steps = []
        deadline = time.monotonic() + 60
        while pending(h):  # (a step finds none while another database's transaction is older)
            assert time.monotonic() < deadline, steps
            step = h.one("SELECT func_fold_job_counters(2)")
            steps.append((step["events"], step["more"]))
            assert totals_by_status(h) == truth
        folded = [s for s in steps if s[0]]
        assert sum(n for n, _ in folded) == 3
        assert all(n <= 2 and more == (n == 2) for n, more in steps)
        assert pending(h) == 0 and folded_totals(h) == truth
        with pytest.raises(Exception, match="max_events must be from 1 to 10000000"):
            h.one("SELECT func_fold_job_counters(0)")
