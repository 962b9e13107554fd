"""A worker whose only door is Supabase REST (the PostgREST stand-in on a real database):
it claims, runs, heartbeats with its logs and completes through ``rpc``, polling; a
gateway that answers 503 for a while costs heartbeats, not log lines."""

from __future__ import annotations

import threading
import time

import pytest

from orchestrator.cli.worker_cmd import worker_database
from orchestrator.config import Settings
from orchestrator.db.target import RestTarget
from orchestrator.errors import DatabaseUnavailable, MigrationError
from orchestrator.worker.runtime import WorkerCounts
from orchestrator.worker.store import WorkerDatabase
from tests.integration.test_worker_runtime import hub, job_row, run_worker, submit  # noqa: F401
from tests.support.fake_postgrest import FakePostgrest

KEY = "service-role-key-for-tests"
WORKER_CALLS = {
    "/rest/v1/rpc/func_claim_jobs",
    "/rest/v1/rpc/func_worker_heartbeat_with_logs",
    "/rest/v1/rpc/func_extend_job_leases",
    "/rest/v1/rpc/func_complete_jobs_and_claim",  # completions go in batches, with a claim
}


def task_messages(conn, job_id) -> list[str]:
    """Messages of the job's task, in the order they were logged."""
    rows = conn.execute(
        'SELECT message FROM system_logs WHERE task_id = %s ORDER BY "timestamp", id', [job_id]
    )
    return [message for (message,) in rows]


def test_a_job_runs_and_its_logs_land_over_rest_only(hub, db_url, conn):  # noqa: F811
    """Every call goes through the gateway (no SQL connection), and the worker polls."""
    job_id = submit(hub, {"command": "sh -c 'echo first; echo second'"})
    with FakePostgrest(db_url, KEY) as fake:
        database = WorkerDatabase.supabase_rest(fake.url, KEY)
        assert isinstance(database.target, RestTarget)
        counts = run_worker(db_url, database=database)
        paths = {request.path for request in fake.requests}
        keys = {request.headers.get("apikey") for request in fake.requests}
    assert counts.completed == 1
    assert job_row(conn, job_id)[0] == "completed"
    said = task_messages(conn, job_id)
    assert said[0].startswith(f"Running job {job_id}")
    assert {"first", "second"} <= set(said)
    assert paths <= WORKER_CALLS  # a lease renewal only if the job outlived a beat
    assert WORKER_CALLS - paths <= {"/rest/v1/rpc/func_extend_job_leases"}
    assert keys == {KEY}
    drivers = conn.execute(
        "SELECT count(*) FROM system_logs WHERE logger_name ~ '^(httpx|httpcore|postgrest|supabase)'"
    ).fetchone()
    assert drivers == (0,)  # the gateway's client logs each request at INFO: not fed back


def test_a_gateway_outage_during_a_job_costs_heartbeats_not_log_lines(hub, db_url, conn):  # noqa: F811
    """Heartbeats that get 503 put their logs back; a later one ships them, once each."""
    job_id = submit(hub, {"command": "sh -c 'echo before; sleep 1.5; echo after'"})
    with FakePostgrest(db_url, KEY) as fake:
        database = WorkerDatabase.supabase_rest(fake.url, KEY)
        result: dict[str, WorkerCounts] = {}
        thread = threading.Thread(
            target=lambda: result.update(counts=run_worker(db_url, database=database))
        )
        thread.start()
        deadline = time.monotonic() + 30
        while job_row(conn, job_id)[0] != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        seen = len(fake.requests)
        fake.fail_next(503, times=2)  # the job sleeps: only the pulse calls meanwhile
        thread.join(60)
        assert not thread.is_alive()
        failed = fake.requests[seen : seen + 2]
    # A beat is a heartbeat, then (if it landed) a lease renewal: the first 503 is a beat.
    assert failed[0].path == "/rest/v1/rpc/func_worker_heartbeat_with_logs"
    assert {r.path for r in failed} <= WORKER_CALLS - {"/rest/v1/rpc/func_claim_jobs"}
    assert result["counts"].completed == 1
    said = task_messages(conn, job_id)
    assert said.count("before") == 1 and said.count("after") == 1, said
    bounced = {e["id"] for r in failed if "logs" in r.body for e in r.body["logs"]}
    landed = conn.execute(
        "SELECT count(*) FROM system_logs WHERE id = ANY(%s::uuid[])", [list(bounced)]
    ).fetchone()
    assert landed == (len(bounced),)  # every entry a 503 bounced landed later, once


def test_once_takes_a_failed_claim_for_an_outage_not_for_an_empty_queue(hub, db_url, conn):  # noqa: F811
    """--once exits when nothing is claimable; a claim the gateway refused with 503 is not
    that: the worker waits a poll interval, claims again and runs the job."""
    job_id = submit(hub, {"command": "echo patient"})
    with FakePostgrest(db_url, KEY) as fake:
        fake.fail_next(503, times=5)  # the first claim is among them, whatever the order
        counts = run_worker(db_url, database=WorkerDatabase.supabase_rest(fake.url, KEY))
        first = [r.path.rsplit("/", 1)[-1] for r in fake.requests[:5]]
    assert "func_claim_jobs" in first
    assert counts.completed == 1
    assert job_row(conn, job_id)[0] == "completed"


def test_a_finished_job_is_reported_through_a_gateway_hiccup_not_run_again(hub, db_url, conn):  # noqa: F811
    """Two 503s on the completion: the worker retries within its lease and the job is
    completed once, on its first attempt, instead of waiting for the reaper to rerun it."""
    job_id = submit(hub, {"command": "echo expensive"})
    with FakePostgrest(db_url, KEY) as fake:
        fake.fail_next(503, times=2, function="func_complete_jobs_and_claim")
        counts = run_worker(db_url, database=WorkerDatabase.supabase_rest(fake.url, KEY))
        reports = [r for r in fake.requests if r.path.endswith("/func_complete_jobs_and_claim")]
    assert len(reports) == 3
    assert (counts.completed, counts.refused) == (1, 0)
    assert job_row(conn, job_id)[:3] == ("completed", 1, None)  # status, attempts, error
    said = task_messages(conn, job_id)
    assert sum(m.startswith(f"Report of job {job_id} failed") for m in said) == 2
    assert said.count("expensive") == 1


def test_each_report_brings_the_next_job_in_the_same_call(hub, db_url, conn):  # noqa: F811
    """Three short jobs, one slot: one claim to start, then every completion claims the
    next job in the same call; the last one's finds nothing, and one more claim ends a
    --once run. Every job completes once, in priority order."""
    ids = [submit(hub, {"command": f"echo {n}"}, priority=900 - n) for n in range(3)]
    with FakePostgrest(db_url, KEY) as fake:
        counts = run_worker(db_url, database=WorkerDatabase.supabase_rest(fake.url, KEY))
        calls = [r.path.rsplit("/", 1)[-1] for r in fake.requests]
    assert (counts.claimed, counts.completed, counts.refused) == (3, 3, 0)
    assert calls.count("func_complete_jobs_and_claim") == 3
    assert calls.count("func_claim_jobs") == 2
    assert "func_complete_jobs" not in calls
    started = conn.execute(
        "SELECT job_id FROM jobs WHERE job_id = ANY (%s) ORDER BY started_at", [ids]
    ).fetchall()
    assert [str(job_id) for (job_id,) in started] == ids
    assert all(job_row(conn, job_id)[:2] == ("completed", 1) for job_id in ids)


def test_the_worker_command_checks_the_gateway_before_its_first_claim(db_url, empty_db_url):
    """Functions missing behind the gateway, or no gateway: one line at start, no loop."""
    with FakePostgrest(empty_db_url, KEY) as fake:
        settings = Settings(supabase_url=fake.url, supabase_service_role_key=KEY)
        missing = pytest.raises(MigrationError, match=r"cannot run the worker's functions .*404")
        with missing, worker_database(settings, "w-rest"):
            pass
    with FakePostgrest(db_url, KEY) as fake:
        settings = Settings(supabase_url=fake.url, supabase_service_role_key=KEY)
        fake.fail_next(503)
        with (
            pytest.raises(DatabaseUnavailable, match="HTTP 503"),
            worker_database(settings, "w-rest"),
        ):
            pass
        with worker_database(settings, "w-rest") as database:
            assert database.label == f"Supabase REST at {fake.url}"
            assert isinstance(database.target, RestTarget)
