"""The worker's side of issue 15: a cancel stops the command at once (NOTIFY, not the
next heartbeat), a timeout stops it and fails the attempt, and an idle worker wakes
when the next scheduled job is due."""

from __future__ import annotations

import logging
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
from orchestrator.logs.worker import LogBuffer
from orchestrator.worker.runtime import Worker, WorkerOptions
from orchestrator.worker.store import WorkerDatabase

PIDJOB = Path(__file__).parent.parent / "support" / "pidjob.py"


@pytest.fixture
def hub(db_url):
    """An executor on the test database with user alice."""
    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.upsert_hub_user("alice", "acme"))
        yield executor


def pids(path: Path) -> list[int]:
    """The pids the pid job recorded (itself and its child)."""
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(predicate, timeout: float, what: str):
    """Polls ``predicate`` until truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start(db_url, **options) -> tuple[Worker, threading.Thread]:
    """A worker (``once``) on its own thread."""
    opts = WorkerOptions(worker_id="w-life", once=True, poll_interval=0.1, **options)
    worker = Worker(WorkerDatabase.postgres(db_url), opts, LogBuffer())
    thread = threading.Thread(target=worker.run)
    thread.start()
    return worker, thread


def test_a_cancel_stops_the_command_before_the_next_heartbeat(hub, db_url, conn, tmp_path):
    """Heartbeat every 20 s: the cancel's NOTIFY makes the worker renew at once, the
    renewal reports the job lost and the command (and its child) is stopped; nothing is
    reported for it."""
    pidfile = tmp_path / "pids"
    command = f"{sys.executable} {PIDJOB} {pidfile} wait"
    job_id = hub.run(job_calls.submit_job("alice", "t", {"command": command})).job_id
    worker, thread = start(db_url, lease_seconds=60, heartbeat_seconds=20)
    try:
        assert worker.wakeup.ready(10)  # type: ignore[attr-defined]
        running = wait_until(lambda: len(pids(pidfile)) == 2 and pids(pidfile), 30, "the run")
        time.sleep(0.3)  # past the first (immediate) heartbeat: the next is 20 s away
        hub.run(job_calls.cancel_job(job_id, "alice"))
        wait_until(lambda: not any(alive(p) for p in running), 10, "the command to stop")
        thread.join(20)
        assert not thread.is_alive()
    finally:
        worker.request_stop()
        thread.join(30)
    assert worker.counts.lost == [job_id]
    assert worker.counts.completed == worker.counts.failed == 0


def test_a_timeout_stops_the_run_and_fails_the_attempt(hub, db_url, conn, tmp_path):
    """timeout_seconds 1 on a 300 s command: stopped, its child too, and the attempt
    fails with the reason (the last attempt: the job is failed)."""
    pidfile = tmp_path / "pids"
    command = f"{sys.executable} {PIDJOB} {pidfile} wait"
    job_id = hub.run(
        job_calls.submit_job("alice", "t", {"command": command}, timeout_seconds=1, max_attempts=1)
    ).job_id
    worker, thread = start(db_url, poll_only=True, heartbeat_seconds=0.2)
    thread.join(60)
    assert not thread.is_alive()
    assert pids(pidfile) and not any(alive(p) for p in pids(pidfile))
    status, error = conn.execute(
        "SELECT status, error FROM jobs WHERE job_id = %s", [job_id]
    ).fetchone()
    assert (status, error) == ("failed", "timed out after 1 s (timeout_seconds)")
    assert worker.counts.failed == 1


def test_an_idle_worker_waits_only_until_the_next_scheduled_job(hub, db_url, caplog):
    """The claim says when the next scheduled job is due; the idle wait ends then, not a
    poll interval later (here the poll interval is a minute)."""
    opts = WorkerOptions(worker_id="w-idle", poll_only=True, poll_interval=60)
    worker = Worker(WorkerDatabase.postgres(db_url), opts, LogBuffer())
    try:
        assert worker._idle_wait() == 60
        hub.run(job_calls.submit_job("alice", "t", {"command": "true"}, run_in_seconds=2))
        with caplog.at_level(logging.WARNING):
            assert worker._claim() == 0
        wait = worker._idle_wait()
        assert 0 < wait <= 2.5
        assert worker._next_run_after is not None
        assert worker._next_run_after - datetime.now(UTC) < timedelta(seconds=2.5)
    finally:
        worker.wakeup.close()
        worker.pulse.store.close()
        worker.store.close()
