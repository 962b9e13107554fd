"""What the job tables promise about their writes since migrations 0096 and 0097: the
value rules hold for any writer (column domains instead of table CHECKs), a claim and a
completion update the job's row in place (no index of ``jobs`` reads what they change),
and finished queue entries say what their job says, also for rows written before."""

from __future__ import annotations

import re

import psycopg
import pytest

from orchestrator.db.schema_files import sql_dir
from orchestrator.jobs import calls
from tests.integration.jobkit import hub

# What a claim or a completion changes in a jobs row (func_complete_jobs_and_claim).
CHANGED_BY_CLAIM_AND_COMPLETION = (
    "status",
    "attempts",
    "started_at",
    "finished_at",
    "result",
    "updated_at",
)


@pytest.fixture
def h(db_url):
    with hub(db_url) as h:
        h.user("alice", "org-1")
        yield h


def test_no_index_of_jobs_reads_a_column_a_claim_or_completion_changes(h):
    """Any such index (in its columns, expressions or predicate) would make every claim
    and completion add an entry to each index of jobs instead of updating in place."""
    for (definition,) in h.sql(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'public.jobs'::regclass"
    ):
        words = set(re.findall(r"[a-z_]+", definition.split(" USING ", 1)[1]))
        assert not words & set(CHANGED_BY_CLAIM_AND_COMPLETION), definition


def test_a_claim_and_a_completion_update_the_job_row_in_place(h):
    """Counted inside one transaction (pg_stat_xact_user_tables): both updates of the job
    row are heap-only, with the worker's own calls."""
    h.submit("alice")
    with psycopg.connect(h.url) as conn:  # one transaction: its own counters
        claimed = conn.execute("SELECT func_claim_jobs('w1', 1)").fetchone()[0]["jobs"][0]
        conn.execute(
            "SELECT func_complete_jobs_and_claim(jsonb_build_array(jsonb_build_object("
            "'job_id', %s::text, 'lease_token', %s::text)), 'w1', 1)",
            [claimed["job_id"], claimed["lease_token"]],
        )
        updated, in_place = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'public.jobs'::regclass"
        ).fetchone()
    assert (updated, in_place) == (2, 2)


@pytest.mark.parametrize(
    ("statement", "domain"),
    [
        ("UPDATE jobs SET priority = 5000", "job_priority"),
        ("UPDATE jobs SET payload = '[1, 2]'", "job_payload"),
        ("UPDATE jobs SET status = 'done'", "job_status"),
        ("UPDATE jobs SET attempts = -1", "job_attempts"),
        ("UPDATE jobs SET max_attempts = 0", "job_max_attempts"),
        ("UPDATE jobs SET estimated_cost = -1", "job_estimated_cost"),
        ("UPDATE jobs SET timeout_seconds = 0", "job_timeout_seconds"),
        ("UPDATE job_queue SET status = 'paused'", "queue_status"),
    ],
)
def test_a_direct_write_of_a_bad_value_is_refused(h, statement, domain):
    """The rules the functions check hold for a writer who bypasses them (the SQL editor,
    a script with the service role): the write is refused and nothing changes."""
    h.submit("alice")
    before = h.sql("SELECT * FROM jobs")
    with pytest.raises(psycopg.errors.CheckViolation, match=f"domain hub_internal.{domain}"):
        h.sql(statement)
    assert h.sql("SELECT * FROM jobs") == before


def test_the_upgrade_makes_finished_queue_entries_agree_with_their_job(h):
    """Rows written before 0097: a rejected or expired approval left its entry failed
    (the job says cancelled) and a cancel left the entry's run_after as it was. 0097
    sets both from the job, so lists by status and retention find them."""
    h.run(calls.upsert_approval_rule("all"))
    expired = h.submit("alice").job_id
    h.sql("UPDATE approval_requests SET expires_at = now() WHERE job_id = %s", [expired])
    h.run(calls.expire_approvals())
    cancelled = h.submit("alice").job_id
    h.run(calls.cancel_job(cancelled, "alice"))
    # the rows as the functions before 0097 left them
    h.sql(
        "UPDATE job_queue SET status = 'failed', run_after = now() + interval '1 hour' WHERE job_id = %s",
        [expired],
    )
    h.sql(
        "UPDATE job_queue SET run_after = now() + interval '1 hour' WHERE job_id = %s", [cancelled]
    )
    listed = {r.job_id for r in h.run(calls.list_jobs(status="cancelled")).rows}
    assert expired not in listed

    h.sql((sql_dir() / "migrations" / "0097_jobs_hot_updates.sql").read_text())

    for job_id in (expired, cancelled):
        assert h.status(job_id) == ("cancelled", "cancelled")
        assert h.one(
            "SELECT q.run_after = j.finished_at FROM job_queue q JOIN jobs j USING (job_id) WHERE job_id = %s",
            [job_id],
        )
    assert {r.job_id for r in h.run(calls.list_jobs(status="cancelled")).rows} == {
        expired,
        cancelled,
    }
    h.sql("UPDATE jobs SET finished_at = now() - interval '40 days'")
    h.sql("UPDATE job_queue q SET run_after = j.finished_at FROM jobs j WHERE j.job_id = q.job_id")
    assert h.one("SELECT func_prune_jobs(30)")["deleted_jobs"] == 2
