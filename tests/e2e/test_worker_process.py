"""``orchestrator worker`` as a process: killed, terminated, polling only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from orchestrator.config import ACCEPTED
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
from tests.support.fake_postgrest import FakePostgrest
from tests.support.pgbouncer import PgBouncer


def start_worker(
    db_url: str, cwd: Path, *args: str, settings: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``python -m orchestrator worker ARGS`` against ``db_url`` (or the hub ``settings``
    given instead), output in cwd/worker.log."""
    env = {k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"}
    log = (cwd / "worker.log").open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "worker", *args],
        cwd=cwd,
        env={**env, **(settings or {"DATABASE_URL": db_url}), "PYTHONPATH": str(Path.cwd())},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def hub(db_url):
    """An executor on the test database with user alice (acme)."""
    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.upsert_hub_user("alice", "acme"))
        yield executor


def submit(hub, command: str, **job) -> str:
    """Submits a command job of alice's; returns its id."""
    return hub.run(job_calls.submit_job("alice", "test", {"command": command}, **job)).job_id


def queue_row(conn, job_id):
    """(status, worker_id, lease_token, attempt) of a job's queue entry."""
    return conn.execute(
        "SELECT status, worker_id, lease_token, attempt FROM job_queue WHERE job_id = %s",
        [job_id],
    ).fetchone()


def wait_until(predicate, timeout: float, what: str):
    """Polls ``predicate`` until it returns something truthy; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def events(conn, job_id) -> list[str]:
    """The job's event types, in order."""
    rows = conn.execute(
        "SELECT event_type FROM job_events WHERE job_id = %s ORDER BY event_id", [job_id]
    )
    return [event for (event,) in rows]


PIDJOB = Path(__file__).parent.parent / "support" / "pidjob.py"


def pid_job(pidfile: Path, mode: str) -> str:
    """The command line of tests/support/pidjob.py (records its pids in ``pidfile``)."""
    return f"{sys.executable} {PIDJOB} {pidfile} {mode}"


def recorded_pids(pidfile: Path) -> list[list[int]]:
    """[[job pid, its child's pid], ...] per run of the pid job, in order."""
    if not pidfile.exists():
        return []
    return [[int(p) for p in line.split()] for line in pidfile.read_text().splitlines() if line]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_killed_worker_takes_its_command_along_and_the_job_runs_once_at_a_time(
    hub, db_url, tmp_path
):
    """SIGKILL mid-job: the command and the process it started die with the worker
    (checked from the processes, not the events), before the job can be claimed again;
    another worker then runs it, and the old lease's late completion is refused."""
    pidfile = tmp_path / "pids"
    job_id = submit(hub, pid_job(pidfile, "wait"))
    common = ("--lease", "4", "--heartbeat", "0.5", "--poll-only", "--poll-interval", "0.1")
    worker = start_worker(db_url, tmp_path, "--worker-id", "doomed", *common)
    with psycopg.connect(db_url, autocommit=True) as conn:
        try:
            first = wait_until(lambda: recorded_pids(pidfile), 30, "the job to start")[0]
            old_token = queue_row(conn, job_id)[2]
            assert all(alive(pid) for pid in first)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            wait_until(lambda: not any(alive(p) for p in first), 20, "the command to die")
            # gone while the job is still leased to the dead worker: never two at once
            assert queue_row(conn, job_id)[:2] == ("running", "doomed")
            rescuer = start_worker(db_url, tmp_path, "--worker-id", "rescuer", *common)
            try:
                runs = wait_until(lambda: recorded_pids(pidfile)[1:], 30, "the second run")
                assert all(alive(pid) for pid in runs[0])
                assert not any(alive(p) for p in first)
                late = hub.run(job_calls.complete_job(job_id, str(old_token), {"late": True}))
                assert late.accepted is False
                assert queue_row(conn, job_id)[:2] == ("running", "rescuer")
                hub.run(job_calls.cancel_job(job_id, "test"))
                wait_until(lambda: not any(alive(p) for p in runs[0]), 20, "the cancel")
            finally:
                rescuer.send_signal(signal.SIGTERM)
                rescuer.wait(30)
        finally:
            if worker.poll() is None:
                worker.kill()


def test_once_leaves_no_process_of_its_jobs_behind(hub, db_url, tmp_path):
    """A command that starts a background process and exits: the job completes, and when
    ``--once`` returns, nothing the job started is running."""
    pidfile = tmp_path / "pids"
    job_id = submit(hub, pid_job(pidfile, "leave"))
    worker = start_worker(db_url, tmp_path, "--once", "--poll-only", "--poll-interval", "0.1")
    assert worker.wait(60) == 0
    [[job_pid, left_behind]] = recorded_pids(pidfile)
    assert not alive(job_pid) and not alive(left_behind)
    assert hub.run(job_calls.get_job(job_id)).job.status == "completed"


def test_a_heartbeat_slower_than_half_the_lease_is_refused(db_url, tmp_path):
    """--heartbeat 6 with --lease 10 would let the lease lapse between renewals (another
    worker would run the job meanwhile): one line, exit 1, nothing claimed."""
    worker = start_worker(db_url, tmp_path, "--lease", "10", "--heartbeat", "6", "--once")
    assert worker.wait(30) == 1
    lines = (tmp_path / "worker.log").read_text().strip().splitlines()
    assert lines == [
        "orchestrator: error: --heartbeat 6 is too slow for --lease 10: leases are renewed "
        "every heartbeat, so it must be at most half the lease (5 s); raise --lease or "
        "lower --heartbeat"
    ]


def test_sigterm_lets_a_short_job_finish_then_exits_zero(hub, db_url, tmp_path):
    """Within the grace period the running job completes and is reported."""
    job_id = submit(hub, "sh -c 'sleep 1; echo finished'")
    worker = start_worker(
        db_url, tmp_path, "--poll-only", "--poll-interval", "0.1", "--grace", "20"
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        wait_until(lambda: queue_row(conn, job_id)[0] == "running", 30, "the claim")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        assert conn.execute("SELECT status FROM jobs WHERE job_id = %s", [job_id]).fetchone() == (
            "completed",
        )
        worker_row = conn.execute("SELECT status FROM workers").fetchall()
        assert worker_row == [("stopped",)]
        lines = conn.execute(
            "SELECT message FROM system_logs WHERE task_id = %s AND message = 'finished'", [job_id]
        ).fetchall()
        assert lines == [("finished",)]


def test_sigterm_past_the_grace_period_releases_the_job(hub, db_url, tmp_path):
    """A job that outlives the grace is stopped and released: queued, no attempt spent."""
    job_id = submit(hub, "sleep 60")
    worker = start_worker(
        db_url, tmp_path, "--poll-only", "--poll-interval", "0.1", "--grace", "0.5"
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        wait_until(lambda: queue_row(conn, job_id)[0] == "running", 30, "the claim")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        assert queue_row(conn, job_id)[0] == "queued"
        assert events(conn, job_id)[-1] == "released"
        attempts = conn.execute("SELECT attempts FROM jobs WHERE job_id = %s", [job_id]).fetchone()
        assert attempts == (0,)


def test_a_second_sigterm_ends_the_grace_at_once(hub, db_url, tmp_path):
    """An operator who insists: the job is released now, not after the 600 s grace."""
    job_id = submit(hub, "sleep 60")
    worker = start_worker(
        db_url,
        tmp_path,
        "--poll-only",
        "--poll-interval",
        "0.1",
        "--grace",
        "600",
        "--heartbeat",
        "0.3",
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        wait_until(lambda: queue_row(conn, job_id)[0] == "running", 30, "the claim")
        worker.send_signal(signal.SIGTERM)
        wait_until(
            lambda: conn.execute("SELECT status FROM workers").fetchone() == ("draining",),
            30,
            "the worker to report draining",
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        assert queue_row(conn, job_id)[0] == "queued"
        assert events(conn, job_id)[-1] == "released"


def test_poll_only_worker_runs_jobs_through_a_transaction_pooler(hub, db_url, tmp_path):
    """Behind PgBouncer in transaction mode (no LISTEN, no session state) polling alone
    finds a job submitted after the worker started, and the job's logs arrive."""
    try:
        bouncer = PgBouncer(db_url, pool_size=1).__enter__()
    except RuntimeError as error:  # missing binary: fail loudly, never skip
        pytest.fail(str(error), pytrace=False)
    worker = start_worker(
        bouncer.url(), tmp_path, "--poll-only", "--poll-interval", "0.2", "--heartbeat", "0.5"
    )
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            wait_until(
                lambda: conn.execute("SELECT 1 FROM workers").fetchone(), 30, "the first heartbeat"
            )
            job_id = submit(hub, "echo polled")
            wait_until(
                lambda: conn.execute(
                    "SELECT 1 FROM system_logs WHERE task_id = %s AND message = 'polled'",
                    [job_id],
                ).fetchone(),
                30,
                "the job's output row",
            )
            status = conn.execute("SELECT status FROM jobs WHERE job_id = %s", [job_id]).fetchone()
            assert status == ("completed",)
            listening = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query ILIKE 'LISTEN%%'"
            ).fetchone()
            assert listening == (0,)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        bouncer.__exit__(None, None, None)


def test_a_worker_with_only_the_supabase_url_and_key_runs_jobs_over_rest(hub, db_url, tmp_path):
    """No DATABASE_URL: the worker claims, logs and completes through the REST gateway
    (the PostgREST stand-in), says so at start, and exits 0 on SIGTERM."""
    key = "service-role-key-for-tests"
    with FakePostgrest(db_url, key) as fake:
        url = fake.url
        rest = {"SUPABASE_URL": url, "SUPABASE_SERVICE_ROLE_KEY": key}
        worker = start_worker(db_url, tmp_path, "--poll-interval", "0.2", settings=rest)
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                job_id = submit(hub, "echo over rest")
                wait_until(
                    lambda: conn.execute(
                        "SELECT 1 FROM system_logs WHERE task_id = %s AND message = 'over rest'",
                        [job_id],
                    ).fetchone(),
                    30,
                    "the job's output row",
                )
                status = conn.execute("SELECT status FROM jobs WHERE job_id = %s", [job_id])
                assert status.fetchone() == ("completed",)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        assert {r.path.rsplit("/", 1)[-1] for r in fake.requests} >= {
            "func_claim_jobs",
            "func_worker_heartbeat_with_logs",
            "func_complete_jobs_and_claim",
        }
    output = (tmp_path / "worker.log").read_text()
    assert f"started on Supabase REST at {url}" in output
    assert "poll-only" in output
    assert key not in output  # the key is a secret: never printed


def test_a_worker_pointed_at_a_dead_gateway_says_so_in_one_line(tmp_path):
    """Nothing listening at SUPABASE_URL: one line naming it, exit 1, no traceback."""
    with FakePostgrest("postgresql://unused", "k") as fake:
        url = fake.url  # a port that refuses once the stand-in stops
    rest = {"SUPABASE_URL": url, "SUPABASE_SERVICE_ROLE_KEY": "k"}
    worker = start_worker("", tmp_path, "--once", settings=rest)
    assert worker.wait(60) == 1
    output = (tmp_path / "worker.log").read_text()
    assert f"Supabase REST at {url} unreachable" in output
    assert "Traceback" not in output
