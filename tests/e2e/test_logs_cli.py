"""``orchestrator logs`` and ``scripts/query_logs.py`` as a user runs them: exit codes,
one-line errors, and a live ``--follow`` that picks up new rows."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from orchestrator.config import ACCEPTED
from tests.e2e.test_cli import orchestrator
from tests.integration.logrows import entry, insert

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://hub@127.0.0.1:1/nothing"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--level", "loud"], "unknown level 'loud'; accepted: DEBUG"),
        (["--min-level", "verbose"], "unknown level 'verbose'"),
        (["--since", "5 parsecs"], "malformed --since '5 parsecs': expected a duration"),
        (["--until", "tomorrow"], "malformed --until 'tomorrow'"),
        (["--since", "99999999d"], "--since '99999999d' is too long: expected a duration"),
        (["--since", "-99999999d"], "--since '99999999d' is too long"),
        (["--task", "1234"], "malformed task id '1234': expected a UUID"),
        (["--task-timeline", "not-a-uuid"], "malformed task id 'not-a-uuid'"),
        (["--hours", "0"], "--hours must be above 0"),
        (["--hours", "many"], "argument --hours: expected a number, got 'many'"),
        (["--after", "xyz"], "malformed log id 'xyz'"),
        (["--cycle", "x"], "argument --cycle: expected a cycle number (a whole number), got 'x'"),
        (["--cycle", "9999999999"], "argument --cycle: expected a cycle number"),
        (["--limit", "0"], "argument --limit: expected a positive whole number of rows, got '0'"),
        (["--format", "xml"], "argument --format: invalid choice: 'xml' (choose from"),
        (
            ["--errors-summary", "--limit", "5000"],
            "--limit of --errors-summary must be between 1 and 1000",
        ),
        (["--since"], "argument --since: expected one argument"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, says):
    """Each mistake on the command line: exit 2 (as argparse's own), one line on stderr
    naming the flag, no usage block, no traceback, nothing on stdout, no database."""
    result = orchestrator("logs", *args, cwd=tmp_path, timeout=60, DATABASE_URL=UNREACHABLE)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert re.match(r"orchestrator( logs)?: error: ", lines[0])  # unknown flags: the top parser


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path):
    """Not a usage error: exit 1, one line naming the database."""
    result = orchestrator("logs", cwd=tmp_path, timeout=60, DATABASE_URL=UNREACHABLE)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"orchestrator: error: cannot connect to {UNREACHABLE}"
    )


def test_the_script_is_the_same_command(tmp_path):
    """scripts/query_logs.py runs `orchestrator logs` with the same checks."""
    clean = {k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "query_logs.py"), "--level", "loud"],
        cwd=tmp_path, env={**clean, "DATABASE_URL": UNREACHABLE},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "orchestrator logs: error: unknown level 'loud'; accepted: DEBUG, INFO, WARNING (or WARN), "
        "ERROR, CRITICAL (or FATAL), in any case"
    )
    usage = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "query_logs.py"), "--help"],
        env=clean, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert usage.returncode == 0 and "--task-timeline" in usage.stdout


def test_follow_prints_rows_written_after_it_started(db_url, tmp_path):
    """`logs -f` shows the backlog, then each new row within a few polls, until stopped."""
    clean = {k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"}
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert(conn, [entry(message="before", worker_id="gpu-7")])
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "logs", "-f", "--interval", "0.2",
             "--format", "jsonl", "--worker", "gpu-7"],
            cwd=tmp_path, env={**clean, "DATABASE_URL": db_url},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        try:
            assert json.loads(lines.get(timeout=30))["message"] == "before"
            insert(conn, [entry(message="other worker", worker_id="gpu-8")])
            insert(conn, [entry(message="after", worker_id="gpu-7")])
            assert json.loads(lines.get(timeout=30))["message"] == "after"
            time.sleep(0.5)
            assert lines.empty()  # the other worker's row was filtered out
            assert proc.poll() is None  # still following
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]


def test_supabase_rest_settings_alone_are_enough(db_url, tmp_path):
    """With only SUPABASE_URL and the key, `orchestrator logs` reads over REST (the
    PostgREST stand-in, capped at 1,000 rows) and pages past the cap."""
    from tests.support.fake_postgrest import FakePostgrest

    key = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert(conn, [entry(message=f"r{i}") for i in range(1500)])
    with FakePostgrest(db_url, key, max_rows=1000) as fake:
        result = orchestrator(
            "logs", "--limit", "1500", "--format", "jsonl", cwd=tmp_path, timeout=60,
            SUPABASE_URL=fake.url, SUPABASE_SERVICE_ROLE_KEY=key,
        )  # fmt: skip
        assert {r.path for r in fake.requests} == {"/rest/v1/rpc/func_query_logs"}
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1500
    assert result.stderr == ""


def test_follow_rides_out_a_lost_connection(db_url, tmp_path):
    """Killing the tail's database connection costs one line on stderr, not the process:
    it reconnects and keeps printing new rows."""
    clean = {k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"}
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert(conn, [entry(message="before")])
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "logs", "-f", "--interval", "0.2",
             "--format", "jsonl"],
            cwd=tmp_path, env={**clean, "DATABASE_URL": db_url},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        errors: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        threading.Thread(target=lambda: [errors.put(x) for x in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        try:
            assert json.loads(lines.get(timeout=30))["message"] == "before"
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            assert killed == 1
            assert "lost the connection" in errors.get(timeout=30)
            insert(conn, [entry(message="after the outage")])
            assert json.loads(lines.get(timeout=30))["message"] == "after the outage"
            assert "reachable again" in errors.get(timeout=30)
            assert proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_the_seeds_anon_key_fallback_is_refused_in_one_line(tmp_path):
    """The seed's scripts fell back to the anon key; the hub's name what they need."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "query_logs.py"), "--hours", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={**{k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"},
             "SUPABASE_URL": "http://127.0.0.1:1", "SUPABASE_ANON_KEY": "anon-key"},
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "without SUPABASE_SERVICE_ROLE_KEY" in result.stderr
    assert "an anon key is not used" in result.stderr
