"""``orchestrator jobs submit-many | rerun | pause | resume | periodic`` and the submit
options --at/--in/--timeout, as a user runs them."""

from __future__ import annotations

import json

import psycopg

from tests.e2e.test_jobs_cli import count_jobs, jobs, one_line_error  # noqa: F401


def line(**job) -> str:
    """One JSON line of alice's job."""
    return json.dumps({"user_id": "alice", "job_type": "t", **job})


def test_submit_many_sends_a_file_and_a_bad_line_sends_nothing(jobs, db_url, tmp_path):  # noqa: F811
    """Three lines (and a blank one) go in; a file with a malformed line, or a job the
    database refuses, is one line naming the line number, and nothing is submitted."""
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(line(payload={"command": f"echo {n}"}) for n in range(3)) + "\n\n")
    done = jobs("submit-many", str(good))
    assert done.returncode == 0, done.stderr
    assert "Submitted 3 job(s)" in done.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(line(payload={"command": "true"}) + "\n{not json\n")
    one_line_error(jobs("submit-many", str(bad)), "bad.jsonl line 2 is not JSON")
    refused = tmp_path / "refused.jsonl"
    refused.write_text(
        line(payload={"command": "true"}) + "\n\n" + line(payload={"command": "x"}, priority=5000)
    )
    one_line_error(
        jobs("submit-many", str(refused)),
        "refused.jsonl line 3: priority must be an integer from 0 to 1000",
    )
    one_line_error(jobs("submit-many", str(tmp_path / "missing.jsonl")), "cannot read")
    assert count_jobs(db_url) == 3


def test_later_timeout_pause_resume_and_rerun_from_the_shell(jobs, db_url):  # noqa: F811
    """--in schedules, --timeout is stored, pause/resume answer in one line, a cancelled
    job is re-run, and a bad duration or cron expression is one line."""
    later = jobs(
        "submit",
        "--user",
        "alice",
        "--type",
        "t",
        "--command",
        "true",
        "--in",
        "2h",
        "--timeout",
        "90s",
    )
    assert later.returncode == 0, later.stderr
    assert ", runs at " in later.stdout
    job_id = later.stdout.split()[2].rstrip(":")
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT q.status, j.timeout_seconds FROM jobs j JOIN job_queue q USING (job_id) "
            "WHERE job_id = %s",
            [job_id],
        ).fetchone()
    assert row == ("scheduled", 90)
    one_line_error(
        jobs("submit", "--user", "alice", "--type", "t", "--command", "true", "--in", "soon"),
        "malformed --in 'soon'",
    )
    paused = jobs("pause", "local", "--type", "t", "--by", "ops")
    assert "Queue local (job type t) paused" in paused.stdout, paused.stderr
    assert "resumed" in jobs("resume", "local", "--type", "t").stdout
    assert "was not paused" in jobs("resume", "local", "--type", "t").stdout
    assert jobs("cancel", job_id, "--by", "alice").returncode == 0
    rerun = jobs("rerun", job_id, "--by", "alice")
    assert rerun.returncode == 0, rerun.stderr
    assert f"Job {job_id} re-run as job " in rerun.stdout
    one_line_error(
        jobs("periodic", "add", "p", "--cron", "every day", "--job", line()),
        "invalid cron expression 'every day'",
    )
    added = jobs(
        "periodic",
        "add",
        "nightly",
        "--cron",
        "0 3 * * *",
        "--job",
        line(payload={"command": "make report"}),
    )
    assert added.returncode == 0, added.stderr
    assert "nightly" in jobs("periodic", "list").stdout
    assert "removed" in jobs("periodic", "remove", "nightly").stdout
