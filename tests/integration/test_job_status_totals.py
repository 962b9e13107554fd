"""The job counters kept by the job_events trigger equal the jobs table, always, and a
rebuild from the events gives the same numbers."""

from __future__ import annotations

from orchestrator.jobs import calls
from orchestrator.ops.calls import ops_metrics
from tests.integration.jobkit import hub
from tests.support.workload import mixed_workload


def totals_by_status(h) -> dict[str, int]:
    """Jobs per status from the counters: transitions in minus transitions out."""
    rows = h.sql(
        "WITH c AS (SELECT from_status, to_status, transitions FROM job_status_totals"
        " UNION ALL SELECT from_status, to_status, transitions FROM job_status_deltas)"
        " SELECT status, sum(n)::bigint FROM ("
        " SELECT to_status AS status, transitions AS n FROM c"
        " UNION ALL SELECT from_status, -transitions FROM c WHERE from_status <> ''"
        ") x GROUP BY 1"
    )
    return {status: n for status, n in rows if n}


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
        assert h.one("SELECT count(*) FROM job_status_deltas") == 0


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
        assert h.one("SELECT count(*) FROM job_status_deltas") == 0  # that call folded them
