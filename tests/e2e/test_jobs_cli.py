"""``orchestrator jobs`` as a user runs it: output, exit status, and the database after."""

from __future__ import annotations

import re

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
from tests.e2e.test_cli import orchestrator

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def jobs(db_url, tmp_path):
    """Runs ``orchestrator jobs ARGS`` against the test database."""

    def run(*args: str):
        return orchestrator("jobs", *args, cwd=tmp_path, DATABASE_URL=db_url)

    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.upsert_hub_user("alice", "acme"))
    return run


def count_jobs(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs").fetchone()
    assert row is not None
    return int(row[0])


def one_line_error(done, *fragments: str) -> None:
    """Exit 1, one stderr line naming the problem, no traceback."""
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 or "usage:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def test_submit_list_show_cancel(jobs, db_url):
    """A user is added; their job goes in, shows up in list and show, and is cancelled."""
    added = jobs("users", "add", "erin", "--org", "acme", "--name", "Erin")
    assert added.returncode == 0, added.stderr
    submitted = jobs(
        "submit",
        "--user",
        "erin",
        "--type",
        "render",
        "--command",
        "echo 'hello world'",
        "--priority",
        "700",
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = re.search(rf"Submitted job ({UUID}): queued", submitted.stdout).group(1)

    listed = jobs("list", "--user", "erin")
    assert listed.returncode == 0, listed.stderr
    assert job_id in listed.stdout and "render" in listed.stdout and "700" in listed.stdout

    shown = jobs("show", job_id, "--no-logs")
    assert shown.returncode == 0, shown.stderr
    assert "submitted" in shown.stdout and "echo 'hello world'" in shown.stdout

    cancelled = jobs("cancel", job_id, "--by", "erin", "--reason", "not needed")
    assert cancelled.returncode == 0, cancelled.stderr
    with psycopg.connect(db_url) as conn:
        status = conn.execute("SELECT status FROM jobs WHERE job_id = %s", [job_id]).fetchone()
    assert status == ("cancelled",)


def test_list_pages_with_keyset(jobs):
    """--limit cuts a page and says how to get the next one; --after gets it."""
    for n in range(3):
        assert (
            jobs("submit", "--user", "alice", "--type", f"t{n}", "--command", "true").returncode
            == 0
        )
    first = jobs("list", "--limit", "2")
    assert first.returncode == 0, first.stderr
    after = re.search(rf"--after ({UUID})", first.stdout).group(1)
    second = jobs("list", "--limit", "2", "--after", after)
    assert second.returncode == 0, second.stderr
    shown = [
        line.split()[0]
        for line in (first.stdout + second.stdout).splitlines()
        if re.match(UUID, line)
    ]
    assert len(shown) == 3 and len(set(shown)) == 3


def test_approval_by_another_user_queues_the_job(jobs, db_url):
    """A rule on cost: the job waits; approve makes it queued in the same transaction."""
    assert jobs("rules", "add", "costly", "--min-cost", "100").returncode == 0
    submitted = jobs(
        "submit",
        "--user",
        "alice",
        "--type",
        "train",
        "--callable",
        "statistics:mean",
        "--kwargs",
        '{"data": [1, 2]}',
        "--cost",
        "250",
    )
    assert submitted.returncode == 0, submitted.stderr
    assert "awaiting_approval" in submitted.stdout
    request = re.search(rf"request ({UUID})", submitted.stdout).group(1)
    self_approved = jobs("approve", request, "--by", "alice")
    one_line_error(self_approved, "self")
    approved = jobs("approve", request, "--by", "bob", "--note", "ok")
    assert approved.returncode == 0, approved.stderr
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT status FROM jobs").fetchall()
    assert rows == [("queued",)]


def test_reject_cancels_the_job(jobs, db_url):
    """Rejecting a pending request ends its job."""
    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.upsert_approval_rule("all-renders", job_type="render"))
    submitted = jobs("submit", "--user", "alice", "--type", "render", "--command", "true")
    request = re.search(rf"request ({UUID})", submitted.stdout).group(1)
    rejected = jobs("reject", request, "--by", "bob")
    assert rejected.returncode == 0, rejected.stderr
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT status FROM jobs").fetchall()
    assert rows == [("cancelled",)]


BAD_INPUT = [
    (("submit", "--user", "mallory", "--type", "x", "--command", "true"), ("mallory",)),
    (
        ("submit", "--user", "alice", "--type", "x", "--priority", "-1", "--command", "true"),
        ("priority",),
    ),
    (
        ("submit", "--user", "alice", "--type", "x", "--command", "echo 'oops"),
        ("malformed command", "No closing quotation"),
    ),
    (
        ("submit", "--user", "alice", "--type", "x", "--callable", "nocolon"),
        ("malformed callable",),
    ),
    (("show", "00000000-0000-7000-8000-000000000000", "--no-logs"), ("unknown job",)),
    (("show", "not-a-uuid"), ("expected a job id",)),
    (("cancel", "00000000-0000-7000-8000-000000000000", "--by", "x"), ("unknown job",)),
]


def test_bad_input_is_one_line_and_writes_nothing(jobs, db_url):
    """Unknown user or job, priority out of range, malformed command: exit != 0, no rows."""
    for args, fragments in BAD_INPUT:
        one_line_error(jobs(*args), *fragments)
    assert count_jobs(db_url) == 0


def test_approving_an_expired_request_is_refused(jobs, db_url):
    """Past its deadline the request cannot be approved; the job does not run."""
    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.upsert_approval_rule("everything"))
    submitted = jobs("submit", "--user", "alice", "--type", "x", "--command", "true")
    request = re.search(rf"request ({UUID})", submitted.stdout).group(1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        # Drive time: the deadline passed a second ago.
        conn.execute(
            "UPDATE approval_requests SET expires_at = now() - interval '1 second' "
            "WHERE request_id = %s",
            [request],
        )
    done = jobs("approve", request, "--by", "bob")
    one_line_error(done, "expired")
    with psycopg.connect(db_url) as conn:
        status = conn.execute("SELECT status FROM jobs").fetchall()
    assert status != [("queued",)]


def test_show_includes_the_log_timeline_of_the_task(jobs, db_url, tmp_path):
    """After a worker ran the job, show lists its output lines as the task's log rows."""
    submitted = jobs(
        "submit", "--user", "alice", "--type", "echo", "--command", "echo 'hi from the job'"
    )
    job_id = re.search(rf"Submitted job ({UUID})", submitted.stdout).group(1)
    ran = orchestrator(
        "worker",
        "--once",
        "--poll-only",
        "--worker-id",
        "w-show",
        cwd=tmp_path,
        DATABASE_URL=db_url,
    )
    assert ran.returncode == 0, ran.stderr
    shown = jobs("show", job_id)
    assert shown.returncode == 0, shown.stderr
    assert "completed" in shown.stdout
    timeline = shown.stdout.split("Log timeline of task", 1)[1]
    assert "hi from the job" in timeline and "w-show" in timeline
    assert f"Running job {job_id}" in timeline


def test_an_unmigrated_database_is_one_line_pointing_at_migrate(tmp_path, empty_db_url):
    """Jobs and worker refuse a database without the schema with one line, no traceback."""
    for args in (("jobs", "list"), ("worker", "--once")):
        done = orchestrator(*args, cwd=tmp_path, DATABASE_URL=empty_db_url)
        one_line_error(
            done, "is reachable, but the hub's schema is missing: run `orchestrator migrate`"
        )
