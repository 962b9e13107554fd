"""`orchestrator run` as a user runs it: one cycle, SIGTERM, a bad config file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg

from orchestrator.config import ACCEPTED
from tests.e2e.test_cli import orchestrator


def test_run_once_runs_one_cycle_and_exits_0(db_url, tmp_path):
    """Every duty runs once against the configured database; exit status 0."""
    result = orchestrator(
        "run", "--once", cwd=tmp_path, DATABASE_URL=db_url, ORCHESTRATOR_LOG_LEVEL="INFO"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "One cycle done (" in out
    for duty in ("approval_expiration: ran", "worker_reaping: ran", "log_maintenance: ran"):
        assert duty in out
    assert "Traceback" not in out


def test_a_bad_config_file_is_one_line_and_exit_1(db_url, tmp_path):
    """The key, the value and what is accepted; no traceback, nothing started."""
    bad = tmp_path / "hub.yaml"
    bad.write_text("background:\n  job_status_polling:\n    interval_seconds: soon\n")
    result = orchestrator("run", "--once", "--config", str(bad), cwd=tmp_path, DATABASE_URL=db_url)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"orchestrator: error: invalid config {bad}: "
        "background.job_status_polling.interval_seconds='soon': expected a number of seconds "
        "above 0 and at most 86400"
    ]


def test_sigterm_stops_exits_0_and_the_cycles_logs_are_in_system_logs(db_url, tmp_path):
    """`orchestrator run` with ENABLE_DB_LOGGING: after a few cycles, SIGTERM; exit 0, and
    its records (to the last one, "Orchestrator daemon stopped") are in system_logs,
    the cycle's records with their cycle numbers."""
    config = tmp_path / "orchestrator.yaml"
    config.write_text(
        "background:\n"
        "  queue_processing: {interval_seconds: 0.1}\n"
        "  worker_reaping: {interval_seconds: 0.1}\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"}
    env = {
        **clean,
        "DATABASE_URL": db_url,
        "ENABLE_DB_LOGGING": "true",
        "DB_LOG_LEVEL": "DEBUG",
        "ORCHESTRATOR_LOG_LEVEL": "DEBUG",
        "ORCHESTRATOR_INSTANCE_ID": "e2e-daemon",
        "DB_LOG_FLUSH_INTERVAL": "0.2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        cycles = 0
        while cycles < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            with psycopg.connect(db_url) as conn:
                cycles = conn.execute(
                    "SELECT count(DISTINCT cycle_number) FROM system_logs "
                    "WHERE source_id = 'e2e-daemon'"
                ).fetchone()[0]
        assert cycles >= 3, "the daemon did not log three cycles"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT message, cycle_number FROM system_logs WHERE source_id = 'e2e-daemon' "
            "ORDER BY timestamp"
        ).fetchall()
    messages = [m for m, _ in rows]
    assert "Queue scheduler started" in messages
    assert "Received SIGTERM; stopping" in messages
    assert messages[-1] == "Orchestrator daemon stopped"
    numbered = [(m, c) for m, c in rows if m.startswith("Cycle ")]
    assert numbered and all(m.startswith(f"Cycle {c}:") for m, c in numbered)
    assert [c for _, c in rows if c is not None] == sorted(c for _, c in rows if c is not None)
