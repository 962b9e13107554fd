"""Output that composes, as a shell user meets it: a pipe closed early by its reader
(``| head``) ends each command quietly, ``--export FILE`` picks its format from the
extension, the summaries honour ``--format`` and ``--export``, ``--since -5m`` reads
as journalctl's, and the job listings say what the README says they say."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from orchestrator.config import ACCEPTED
from tests.e2e.test_cli import orchestrator
from tests.integration.logrows import entry, insert


def closed_pipe_run(
    *args: str, cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs the command with stdout a pipe whose reader has already gone: its first
    write meets EPIPE, exactly as under ``| head`` once head has exited."""
    clean = {k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=cwd,
            env={**clean, **env},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.fixture
def some_logs(db_url):
    """A few hundred rows of every level, a failed task with its exception among them."""
    now = datetime.now(UTC)
    rows = [
        entry(
            timestamp=(now - timedelta(seconds=i)).isoformat(),
            log_level=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")[i % 5],
            message=f"row {i}",
            worker_id=f"gpu-{i % 3}",
        )
        for i in range(300)
    ]
    rows.append(
        entry(
            log_level="ERROR",
            message="Task failed",
            exception="Traceback (most recent call last):\n  File 'w.py'\n"
            "MemoryError: CUDA out of memory\n",
        )
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert(conn, rows)
    return db_url


@pytest.mark.parametrize(
    "args",
    [
        ["logs", "--format", "jsonl"],
        ["logs"],
        ["logs", "--stats"],
        ["logs", "--errors-summary", "--format", "csv"],
        ["logs", "-f", "--interval", "0.1"],
        ["jobs", "list"],
        ["migrate", "--status"],
        ["--help"],
        ["logs", "--help"],
        ["demo", "--no-jobs"],
    ],
    ids=" ".join,
)
def test_a_pipe_closed_early_ends_the_command_quietly(some_logs, tmp_path, args):
    """No traceback, nothing on stderr, exit 141 (a tool killed by SIGPIPE), also for
    `logs -f`, which would otherwise print into the closed pipe forever."""
    done = closed_pipe_run(*args, cwd=tmp_path, DATABASE_URL=some_logs)
    assert done.stderr == ""
    # argparse's --help ignores a failed write itself and exits 0
    assert done.returncode == (0 if "--help" in args else 141)


def test_a_worker_whose_stdout_is_closed_keeps_working(db_url, tmp_path):
    """A worker's console lines have nowhere to go; it runs its job and exits 0, its
    logs reach the database, and no '--- Logging error ---' is printed per record."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT func_upsert_hub_user('alice', 'acme')")
        job_id = conn.execute(
            'SELECT func_submit_job(\'{"user_id": "alice", "job_type": "t", '
            '"payload": {"command": "echo hello"}}\') ->> \'job_id\''
        ).fetchone()[0]
    done = closed_pipe_run(
        "worker", "--once", "--worker-id", "w-closed", "--poll-interval", "0.1",
        cwd=tmp_path, DATABASE_URL=db_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr
    with psycopg.connect(db_url) as conn:
        status = conn.execute("SELECT status FROM jobs WHERE job_id = %s", [job_id]).fetchone()
        lines = conn.execute(
            "SELECT count(*) FROM system_logs WHERE task_id = %s AND message = 'hello'", [job_id]
        ).fetchone()
    assert status == ("completed",) and lines == (1,)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("day.json", "json"), ("day.jsonl", "jsonl"), ("day.ndjson", "jsonl"), ("day.csv", "csv"),
     ("day.txt", "csv")],
)  # fmt: skip
def test_export_takes_its_format_from_the_extension(some_logs, tmp_path, name, fmt):
    """The seed's own `--export logs.json` writes JSON; an unknown extension gets CSV;
    stderr says which format was written."""
    target = tmp_path / name
    done = orchestrator("logs", "--export", str(target), cwd=tmp_path, DATABASE_URL=some_logs)
    assert done.returncode == 0, done.stderr
    assert f"exported 301 rows to {target} ({fmt})" in done.stderr
    text = target.read_text()
    if fmt == "json":
        rows = json.loads(text)
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 301 and {r["message"] for r in rows} >= {"row 0", "Task failed"}


def test_format_wins_over_the_extension(some_logs, tmp_path):
    """An explicit --format is obeyed whatever the file is called."""
    target = tmp_path / "rows.json"
    done = orchestrator(
        "logs", "--export", str(target), "--format", "jsonl", cwd=tmp_path, DATABASE_URL=some_logs
    )
    assert done.returncode == 0, done.stderr
    assert len([json.loads(line) for line in target.read_text().splitlines()]) == 301


@pytest.mark.parametrize("mode", ["--stats", "--errors-summary"])
def test_summaries_honour_format_and_export(some_logs, tmp_path, mode):
    """json is one document, jsonl and csv one row per line naming its section, and
    --export FILE writes the same by its extension."""
    as_json = json.loads(
        orchestrator("logs", mode, "--format", "json", cwd=tmp_path, DATABASE_URL=some_logs).stdout
    )
    assert list(as_json["by_level"]) == (
        ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        if mode == "--stats"
        else ["ERROR", "CRITICAL"]
    )  # severity order
    lines = orchestrator("logs", mode, "--format", "jsonl", cwd=tmp_path, DATABASE_URL=some_logs)
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert rows[0]["section"] == "total" and rows[0]["count"] == as_json["total"]
    assert {r["section"] for r in rows} >= {"total", "by_level", "by_source", "by_worker"}
    table = orchestrator("logs", mode, "--format", "csv", cwd=tmp_path, DATABASE_URL=some_logs)
    parsed = list(csv.DictReader(io.StringIO(table.stdout)))
    assert parsed[0]["section"] == "total" and int(parsed[0]["count"]) == as_json["total"]
    target = tmp_path / "summary.csv"
    done = orchestrator("logs", mode, "--export", str(target), cwd=tmp_path, DATABASE_URL=some_logs)
    assert done.returncode == 0 and done.stdout == ""
    exported = list(csv.DictReader(io.StringIO(target.read_text())))

    def windowless(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k not in ("since", "until")} for r in rows]

    assert windowless(exported) == windowless(parsed)  # each run has its own "now"
    target = tmp_path / "summary.json"
    orchestrator("logs", mode, "--export", str(target), cwd=tmp_path, DATABASE_URL=some_logs)
    assert json.loads(target.read_text())["total"] == as_json["total"]


def test_the_errors_summary_shows_the_cause_of_a_message(some_logs, tmp_path):
    """The exception's last line is the cause, in the table and in JSON."""
    text = orchestrator("logs", "--errors-summary", cwd=tmp_path, DATABASE_URL=some_logs).stdout
    message_line = next(i for i, line in enumerate(text.splitlines()) if "Task failed" in line)
    assert "-> MemoryError: CUDA out of memory" in text.splitlines()[message_line + 1]
    doc = json.loads(
        orchestrator(
            "logs", "--errors-summary", "--format", "json", cwd=tmp_path, DATABASE_URL=some_logs
        ).stdout
    )
    causes = {m["message"]: m["cause"] for m in doc["top_messages"]}
    assert causes["Task failed"] == "MemoryError: CUDA out of memory"
    assert causes["row 3"] is None


def test_since_with_a_minus_sign_reads_as_journalctl_does(some_logs, tmp_path):
    """`--since -10m` is ten minutes ago (journalctl's form), not an unknown option."""

    def count(since: str) -> int:
        done = orchestrator(
            "logs", "--since", since, "--format", "jsonl", "--limit", "1000",
            cwd=tmp_path, DATABASE_URL=some_logs,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return len(done.stdout.splitlines())

    assert count("-10m") == count("10m") == 301
