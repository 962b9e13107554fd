"""The worker runtime in-process against a real database: jobs run, log, finish, retry."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
from orchestrator.logs.worker import LogBuffer, WorkerDatabaseLogHandler
from orchestrator.worker.runtime import Worker, WorkerCounts, WorkerOptions
from orchestrator.worker.store import WorkerDatabase
from orchestrator.worker.wakeup import ListenWakeup


@pytest.fixture
def hub(db_url):
    """An executor on the test database with users alice (acme) and bob (acme)."""
    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.upsert_hub_user("alice", "acme"))
        executor.run(job_calls.upsert_hub_user("bob", "acme"))
        yield executor


def submit(hub, payload, **job):
    """Submits a job of alice's; returns its id."""
    return hub.run(job_calls.submit_job("alice", "test", payload, **job)).job_id


def run_worker(db_url, worker_id="w-test", database=None, **options) -> WorkerCounts:
    """Runs a worker with --once semantics in this process, its logs on the heartbeat
    (through ``database``, psycopg on ``db_url`` by default)."""
    buffer = LogBuffer()
    handler = WorkerDatabaseLogHandler(worker_id, buffer, logging.DEBUG)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        opts = WorkerOptions(
            worker_id=worker_id,
            once=True,
            poll_only=True,
            poll_interval=0.1,
            heartbeat_seconds=0.2,
            **options,
        )
        return Worker(database or WorkerDatabase.postgres(db_url), opts, buffer).run()
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def job_row(conn, job_id):
    """(status, attempts, error, result) of a job."""
    return conn.execute(
        "SELECT status, attempts, error, result FROM jobs WHERE job_id = %s", [job_id]
    ).fetchone()


def test_a_shell_job_completes_and_its_output_lines_are_rows_of_its_task(hub, db_url, conn):
    """stdout lines at INFO, stderr lines at WARNING, task_id = job id, worker_id set."""
    job_id = submit(hub, {"command": "sh -c 'echo first; echo oops >&2; echo second'"})
    counts = run_worker(db_url)
    assert counts.completed == 1
    status, attempts, error, result = job_row(conn, job_id)
    assert (status, attempts, error) == ("completed", 1, None)
    assert result["exit_code"] == 0 and result["stdout_lines"] == 2
    rows = conn.execute(
        "SELECT log_level, message, worker_id, source_type FROM system_logs "
        "WHERE task_id = %s AND logger_name LIKE 'orchestrator.job.%%' ORDER BY message",
        [job_id],
    ).fetchall()
    assert sorted(rows) == [
        ("INFO", "first", "w-test", "worker"),
        ("INFO", "second", "w-test", "worker"),
        ("WARNING", "oops", "w-test", "worker"),
    ]
    said = {
        m for (m,) in conn.execute("SELECT message FROM system_logs WHERE task_id = %s", [job_id])
    }
    assert any(m.startswith(f"Running job {job_id}") for m in said)
    worker = conn.execute("SELECT status FROM workers WHERE worker_id = 'w-test'").fetchone()
    assert worker == ("stopped",)


def test_a_failing_command_is_retried_then_fails_with_its_stderr(hub, db_url, conn):
    """Exit 1 spends an attempt and schedules a retry; the last attempt fails the job."""
    job_id = submit(hub, {"command": "sh -c 'echo broken input >&2; exit 1'"}, max_attempts=2)
    run_worker(db_url)
    status, attempts, error, _ = job_row(conn, job_id)
    assert (status, attempts) == ("queued", 1)
    assert "command exited with code 1: broken input" in error
    # Drive time instead of sleeping through the backoff.
    conn.execute("UPDATE job_queue SET run_after = now() WHERE job_id = %s", [job_id])
    run_worker(db_url)
    status, attempts, error, _ = job_row(conn, job_id)
    assert (status, attempts) == ("failed", 2)
    assert "broken input" in error


def test_callable_jobs_return_values_and_fail_clearly(hub, db_url, conn):
    """A callable's return value is the result; an import error fails at once, no retry."""
    good = submit(hub, {"callable": "tests.support.jobfuncs:add", "kwargs": {"a": 1, "b": 2}})
    missing = submit(hub, {"callable": "no_such_module_xyz:run"}, max_attempts=3)
    run_worker(db_url, concurrency=2)
    assert job_row(conn, good)[0] == "completed"
    assert job_row(conn, good)[3] == {"return": {"sum": 3}}
    status, attempts, error, _ = job_row(conn, missing)
    assert (status, attempts) == ("failed", 1)
    assert "cannot import module 'no_such_module_xyz'" in error
    rows = conn.execute(
        "SELECT message FROM system_logs WHERE task_id = %s AND logger_name = 'tests.jobfuncs'",
        [good],
    ).fetchall()
    assert rows == [("adding 1 and 2",)]


def test_a_payload_the_worker_cannot_parse_fails_without_retries(hub, db_url, conn):
    """A malformed command that reached the queue (e.g. by SQL) fails with the reason."""
    job_id = submit(hub, {"command": "echo 'unbalanced"}, max_attempts=3)
    run_worker(db_url)
    status, attempts, error, _ = job_row(conn, job_id)
    assert (status, attempts) == ("failed", 1)
    assert "malformed command" in error and "No closing quotation" in error


def test_one_claim_takes_a_batch_and_the_jobs_run_at_once(hub, db_url, conn):
    """--max-jobs 3 --concurrency 3: one claim call (one transaction) takes all three,
    and each starts before any finishes."""
    job_ids = [submit(hub, {"command": "sleep 0.5"}) for _ in range(3)]
    counts = run_worker(db_url, concurrency=3, batch_size=3)
    assert counts.completed == 3
    starts, first_end = conn.execute(
        "SELECT count(DISTINCT started_at), min(finished_at) FROM jobs WHERE job_id = ANY(%s)",
        [job_ids],
    ).fetchone()
    assert starts == 1  # started_at = now() of the claim's transaction
    last_claim = conn.execute(
        "SELECT max(created_at) FROM job_events WHERE event_type = 'claimed'"
    ).fetchone()[0]
    assert last_claim < first_end


def test_renewals_keep_a_job_that_outlives_its_lease(hub, db_url, conn):
    """A 2 s lease, a 3 s job: the heartbeat's renewals keep it; nobody else may claim it."""
    job_id = submit(hub, {"command": "sleep 3"})
    stolen: list = []

    def thief() -> None:  # after the first lease would have run out
        with PsycopgExecutor.connect(db_url) as other:
            stolen.extend(other.run(job_calls.claim_jobs("thief", lease_seconds=30)).jobs)

    timer = threading.Timer(2.5, thief)
    timer.start()
    counts = run_worker(db_url, lease_seconds=2)
    timer.join()
    assert stolen == []
    assert (counts.completed, counts.lost) == (1, [])
    assert job_row(conn, job_id)[:2] == ("completed", 1)
    claims = conn.execute(
        "SELECT count(*) FROM job_events WHERE job_id = %s AND event_type = 'claimed'", [job_id]
    ).fetchone()
    assert claims == (1,)


def test_a_cancelled_running_job_is_stopped_and_not_reported(hub, db_url, conn):
    """Cancel while running: the next lease renewal misses it, the worker kills it."""
    job_id = submit(hub, {"command": "sleep 30"})
    counts: list[WorkerCounts] = []
    thread = threading.Thread(target=lambda: counts.append(run_worker(db_url)))
    thread.start()
    try:
        _wait_for(conn, job_id, "running")
        hub.run(job_calls.cancel_job(job_id, "alice", "changed my mind"))
        thread.join(timeout=20)
        assert not thread.is_alive()
    finally:
        thread.join(timeout=30)
    assert counts[0].lost == [job_id]
    assert counts[0].completed == counts[0].failed == 0
    assert job_row(conn, job_id)[0] == "cancelled"


def test_listen_wakes_the_worker_when_a_job_is_submitted(hub, db_url):
    """NOTIFY hub_jobs ends the wait long before its timeout."""
    wakeup = ListenWakeup(db_url)
    try:
        assert wakeup.ready(10)
        wakeup.wait(0.01)  # the wake-up the listener gives itself when it starts
        threading.Timer(0.2, submit, args=(hub, {"command": "true"})).start()
        assert wakeup.wait(30) is True
    finally:
        wakeup.close()


def _wait_for(conn, job_id: str | uuid.UUID, status: str, timeout: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job_row(conn, job_id)[0] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never became {status}: {job_row(conn, job_id)}")


class _ParkedThreads:
    """Job threads that keep the jobs they are given instead of running them, so a test
    can report for them at the moments it chooses."""

    def __init__(self) -> None:
        self.given: list = []

    def submit(self, function, *args) -> None:
        self.given.append(args[0])

    def close(self) -> None:
        pass


def test_a_batch_right_behind_another_still_claims_the_slot_it_frees(hub, db_url, conn):
    """Reported jobs leave the active set when their batch's call returns, not when their
    threads next run: a second batch reported before the first one's threads woke up
    still finds room, and claims in the same call as it completes."""
    ids = [submit(hub, {"callable": "json:dumps", "kwargs": {"obj": n}}) for n in range(4)]
    opts = WorkerOptions(worker_id="w-batch", concurrency=2, poll_only=True)
    worker = Worker(WorkerDatabase.postgres(db_url), opts, LogBuffer())
    worker.threads.close()
    parked = worker.threads = _ParkedThreads()  # type: ignore[assignment]
    try:
        assert worker._claim() == 2
        first, second = parked.given
        worker._complete_batch([(first.job, {"n": 1})])
        worker._complete_batch([(second.job, {"n": 2})])  # first's thread never ran
        assert len(parked.given) == 4  # each batch claimed the slot it freed
        assert {a.job_id for a in worker.active_jobs()} == {a.job_id for a in parked.given[2:]}
        statuses = {str(j): job_row(conn, j)[0] for j in ids}
        assert sorted(statuses.values()) == ["completed", "completed", "running", "running"]
    finally:
        worker.reports.close()
        worker.store.close()
        worker.pulse.store.close()
