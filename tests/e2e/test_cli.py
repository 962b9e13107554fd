"""The command line as a user runs it: a subprocess, its output and its exit status."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from orchestrator.config import ACCEPTED
from orchestrator.db.schema_files import discover

FILES = discover()
MIGRATIONS = len(FILES.migrations) + len(FILES.functions)


def orchestrator(
    *args: str, cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m orchestrator ARGS`` with a clean hub environment plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_demo_on_the_embedded_default_runs_reuses_its_data_and_stops(tmp_path, pgdata):
    """Two runs: the first creates the server and schema, the second reuses them; both stop it."""
    data_dir = pgdata
    first = orchestrator("demo", cwd=tmp_path, EMBEDDED_PG_DATA_DIR=str(data_dir))
    assert first.returncode == 0, first.stderr
    assert f"Database: embedded PostgreSQL in {data_dir}" in first.stdout
    assert f"Schema: {MIGRATIONS} file(s) of sql/ applied now" in first.stdout
    assert "Logged through DatabaseLogHandler; every record delivered: yes." in first.stdout
    assert "counted by the database" in first.stdout
    assert "Handler statistics (DatabaseLogHandler.stats()):" in first.stdout
    assert "Stopped the embedded PostgreSQL" in first.stdout
    assert "Traceback" not in first.stderr
    assert not _postmaster_running(data_dir)

    second = orchestrator("demo", cwd=tmp_path, EMBEDDED_PG_DATA_DIR=str(data_dir))
    assert second.returncode == 0, second.stderr
    assert "Schema: 0 file(s) of sql/ applied now" in second.stdout
    assert not _postmaster_running(data_dir)


HOLD_SERVER = """
import sys, time
from pathlib import Path
from orchestrator.db.embedded import start_embedded
start_embedded(Path(sys.argv[1]))
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_killed_process_does_not_keep_the_embedded_server_running(tmp_path, pgdata):
    """A holder that died by SIGKILL is forgotten; the next run still stops the server."""
    data_dir = pgdata
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SERVER, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        assert _postmaster_running(data_dir)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    done = orchestrator("demo", cwd=tmp_path, EMBEDDED_PG_DATA_DIR=str(data_dir))
    assert done.returncode == 0, done.stderr
    assert not _postmaster_running(data_dir)


def test_demo_against_a_database_url(tmp_path, db_url):
    """The same demo runs against any PostgreSQL given by DATABASE_URL; its end state;
    the commands it prints work as printed, from a shell whose PATH lacks the venv; its
    processes' logs are in a directory of this run's own; the workers LISTEN."""
    done = orchestrator("demo", cwd=tmp_path, DATABASE_URL=db_url)
    assert done.returncode == 0, done.stderr
    printed = [line.strip() for line in done.stdout.splitlines() if " --task-timeline " in line]
    assert printed and not printed[0].startswith("orchestrator ")  # not on PATH here
    shell_env = {k: v for k, v in os.environ.items() if k not in ACCEPTED}
    shell_env["PATH"] = "/usr/bin:/bin"
    read_back = subprocess.run(
        printed[0], shell=True, cwd=tmp_path, env={**shell_env, "DATABASE_URL": db_url},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert read_back.returncode == 0, read_back.stderr
    assert "Running job" in read_back.stdout
    scratch = Path(re.search(r"logs in (\S+)\)", done.stdout).group(1))
    assert scratch.name.startswith("orchestrator-demo-") and scratch.is_dir()
    assert "LISTEN + polling" in (scratch / "demo-worker-1.log").read_text()
    assert "every record delivered: yes" in done.stdout and " errors." in done.stdout
    with psycopg.connect(db_url) as conn:
        leaked = conn.execute(
            "SELECT count(*) FILTER (WHERE worker_id IS NOT NULL OR task_id IS NOT NULL), "
            "count(*) FROM system_logs WHERE source_type = 'orchestrator_gpu' "
            "AND logger_name LIKE 'demo.%'"
        ).fetchone()
    assert leaked is not None and leaked[1] > 0
    assert leaked[0] == 0, "orchestrator rows carry a worker's task or worker id"
    _assert_demo_jobs_end_state(done.stdout, db_url)


def _assert_demo_jobs_end_state(stdout: str, db_url: str) -> None:
    """The demo's jobs end as it says: one failed, the approved one and the rest done."""
    done_stdout = stdout
    assert "orchestrator logs --task-timeline " in done_stdout
    assert "orchestrator dashboard" in done_stdout
    assert "demo-worker-1 exit 0, demo-worker-2 exit 0" in done_stdout
    with psycopg.connect(db_url) as conn:
        jobs = dict(conn.execute("SELECT job_type || ':' || user_id, status FROM jobs").fetchall())
        approvals = conn.execute("SELECT status, decided_by FROM approval_requests").fetchall()
        task_rows = conn.execute(
            "SELECT count(DISTINCT task_id) FROM system_logs WHERE task_id IN "
            "(SELECT job_id FROM jobs) AND source_type = 'worker'"
        ).fetchone()
        workers = conn.execute(
            "SELECT worker_id, status FROM workers WHERE worker_id LIKE 'demo-worker-%' ORDER BY 1"
        ).fetchall()
        oom = conn.execute(
            "SELECT log_level FROM system_logs WHERE message = 'CUDA out of memory'"
        ).fetchall()
    assert jobs == {
        "render:alice": "completed",
        "stats:bob": "completed",
        "train:carol": "failed",
        "upscale:alice": "completed",
        "probe:bob": "completed",
        "probe:carol": "completed",
    }
    assert approvals == [("approved", "dana")]
    assert task_rows == (6,)  # every job's lines are rows of its task
    assert workers == [("demo-worker-1", "stopped"), ("demo-worker-2", "stopped")]
    assert oom == [("WARNING",)]  # stderr of the failing job


def test_migrate_status_lists_applied_and_pending(tmp_path, empty_db_url):
    """--status on a new database shows every file pending; after migrate, applied."""
    before = orchestrator("migrate", "--status", cwd=tmp_path, DATABASE_URL=empty_db_url)
    assert before.returncode == 0, before.stderr
    assert before.stdout.count(" pending") == len(FILES.migrations)
    assert before.stdout.count(" not applied") == len(FILES.functions)
    assert "Behind by" in before.stdout
    applied = orchestrator("migrate", cwd=tmp_path, DATABASE_URL=empty_db_url)
    assert f"Applied {MIGRATIONS} file(s)" in applied.stdout
    again = orchestrator("migrate", cwd=tmp_path, DATABASE_URL=empty_db_url)
    assert "Nothing to apply" in again.stdout
    after = orchestrator("migrate", "--status", cwd=tmp_path, DATABASE_URL=empty_db_url)
    states = [
        line.split()[1]
        for line in after.stdout.splitlines()
        if line.startswith(("migrations/", "functions/"))
    ]
    assert states == ["applied"] * MIGRATIONS
    assert "Behind by" not in after.stdout


def test_invalid_setting_is_one_line_and_exit_1(tmp_path):
    """A bad value never produces a traceback."""
    done = orchestrator("migrate", cwd=tmp_path, DB_LOG_BATCH_SIZE="lots")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "orchestrator: error: invalid setting DB_LOG_BATCH_SIZE='lots': "
        "expected an integer from 1 to 10000"
    )


def test_setting_from_dotenv_in_the_working_directory(tmp_path):
    """.env in the current directory is read."""
    (tmp_path / ".env").write_text("DB_LOG_LEVEL=LOUD\n")
    done = orchestrator("migrate", cwd=tmp_path)
    assert done.returncode == 1
    assert "invalid setting DB_LOG_LEVEL='LOUD'" in done.stderr


def test_unreachable_database_is_one_line(tmp_path):
    """A dead database is reported in one line, without the password."""
    done = orchestrator(
        "migrate", cwd=tmp_path, DATABASE_URL="postgresql://hub:s3cret@127.0.0.1:1/hub"
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        "orchestrator: error: cannot connect to postgresql://hub@127.0.0.1:1/hub:"
    )
    assert len(done.stderr.strip().splitlines()) == 1
    assert "s3cret" not in done.stderr


def test_supabase_rest_only_explains_that_sql_access_is_needed(tmp_path):
    """Migrations need SQL; REST settings alone get a pointer to DATABASE_URL."""
    done = orchestrator(
        "migrate",
        cwd=tmp_path,
        SUPABASE_URL="https://abcd.supabase.co",
        SUPABASE_SERVICE_ROLE_KEY="k",
    )
    assert done.returncode == 1
    assert "set DATABASE_URL" in done.stderr


def test_version_and_help(tmp_path):
    """--version and --help work without any database."""
    assert orchestrator("--version", cwd=tmp_path).stdout.startswith("orchestrator 0.")
    helped = orchestrator("--help", cwd=tmp_path)
    assert "demo" in helped.stdout and "migrate" in helped.stdout


def _counted_and_sent(stdout: str) -> tuple[int, int]:
    counted = int(re.search(r"This run, counted by the database: (\d+) rows", stdout).group(1))
    table = stdout.split("Handler statistics", 1)[1].splitlines()[3:7]
    return counted, sum(int(line.split()[2]) for line in table)


def test_a_second_demo_run_counts_only_its_own_rows(tmp_path, db_url):
    """Two runs a few seconds apart: each counts the rows its handlers sent (242), not
    the earlier run's too."""
    first = orchestrator("demo", "--no-jobs", cwd=tmp_path, DATABASE_URL=db_url)
    second = orchestrator("demo", "--no-jobs", cwd=tmp_path, DATABASE_URL=db_url)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert _counted_and_sent(first.stdout) == _counted_and_sent(second.stdout) == (242, 242)
