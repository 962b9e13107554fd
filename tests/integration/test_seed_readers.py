"""The seed's log handler, ``scripts/query_logs.py``, dashboard and SQL-editor habits,
unchanged, against the hub: the insert reply's ``errors`` count, PostgREST table reads
of ``system_logs``, ``workers`` and the two views, a plain editor INSERT, and the anon
key refused (service_role only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.logs import calls
from tests.integration.logrows import entry, insert, rows
from tests.integration.seed_clients import (
    ANON_KEY,
    KEY,
    WORKER,
    fake,
    get,
    handler_entry,
    post,
    seed,
    seed_beat,
    seed_log,
)
from tests.integration.test_privileges import admin, secured_db, supabase_server
from tests.support.fake_postgrest import FakePostgrest

__all__ = ["admin", "fake", "secured_db", "seed", "supabase_server"]  # fixtures
NOW = datetime.now(UTC)
TASK = str(uuid.uuid4())


def test_the_handlers_batch_reply_counts_refused_entries_in_errors(seed, conn):
    """The seed's DatabaseLogHandler reads `errors` to notice refused records: a bad
    level is counted there (and explained in `rejected`), the rest is stored."""
    batch = [handler_entry("cycle started"), handler_entry("odd", "VERBOSE"), handler_entry("ok")]
    data: Any = seed.rpc("func_insert_logs_batch", {"logs": batch}).execute().data
    assert (data["success"], data["inserted"], data["errors"]) == (True, 2, 1)
    assert data["rejected"][0]["index"] == 1 and "unknown level" in data["rejected"][0]["reason"]
    stored = [(r["source_type"], r["cycle_number"], r["severity_number"]) for r in rows(conn)]
    assert stored == [("orchestrator_gpu", 42, 9)] * 2


@pytest.fixture
def logged(conn) -> list[dict[str, Any]]:
    """Rows as the seed's clients write them: the handler's cycle logs, a worker's beat
    with a task, and rows of other times, levels and sources."""

    def at(minutes: float) -> str:
        return (NOW - timedelta(minutes=minutes)).isoformat()

    insert(
        conn,
        [
            entry(timestamp=at(1), source_type="orchestrator_gpu", source_id="orch", cycle_number=42,
                  message="Cycle 42 done"),
            entry(timestamp=at(2), worker_id=WORKER, source_id=WORKER, task_id=TASK,
                  message="CUDA out of memory", log_level="ERROR"),
            entry(timestamp=at(3), worker_id=WORKER, source_id=WORKER, task_id=TASK,
                  message="Task started"),
            entry(timestamp=at(30), worker_id="gpu-other", source_id="gpu-other",
                  message="cuda warm-up", log_level="WARNING"),
            entry(timestamp=at(90), worker_id=WORKER, source_id=WORKER, message="early",
                  log_level="CRITICAL"),
            entry(timestamp=at(60 * 30), message="yesterday's", log_level="ERROR"),
        ],
    )  # fmt: skip
    return rows(conn)


def _messages(data: Any) -> list[str]:
    return [row["message"] for row in data]


def test_query_logs_reads_select_filter_order_and_limit_as_postgrest(seed, logged):
    """The seed's scripts/query_logs.py: one table read per query, filtered, newest first."""
    logs = seed.table("system_logs")
    hour_ago = (NOW - timedelta(hours=1)).isoformat()
    recent = logs.select("*").gte("timestamp", hour_ago).order("timestamp", desc=True).limit(100)
    assert _messages(recent.execute().data) == [
        "Cycle 42 done", "CUDA out of memory", "Task started", "cuda warm-up"]  # fmt: skip
    errors = logs.select("*").eq("log_level", "ERROR").gte("timestamp", hour_ago).execute()
    assert _messages(errors.data) == ["CUDA out of memory"]
    worker = logs.select("message").eq("worker_id", WORKER).order("timestamp").execute()
    assert worker.data == [{"message": m} for m in ("early", "Task started", "CUDA out of memory")]
    task = logs.select("*").eq("task_id", TASK).order("timestamp").execute()
    assert _messages(task.data) == ["Task started", "CUDA out of memory"]
    cycle = logs.select("*").eq("cycle_number", 42).eq("source_type", "orchestrator_gpu").execute()
    assert _messages(cycle.data) == ["Cycle 42 done"]
    search = logs.select("*").ilike("message", "%cuda%").order("timestamp", desc=True).execute()
    assert _messages(search.data) == ["CUDA out of memory", "cuda warm-up"]
    window = (
        logs.select("message")
        .gte("timestamp", (NOW - timedelta(minutes=31)).isoformat())
        .lte("timestamp", (NOW - timedelta(minutes=2)).isoformat())
        .order("timestamp")
        .execute()
    )
    assert _messages(window.data) == ["cuda warm-up", "Task started", "CUDA out of memory"]


def test_rows_arrive_with_postgrests_json_types(seed, logged):
    """The seed's columns, by name; times as ISO 8601 in UTC, ids as text, metadata as
    an object: what the seed's printing code parses."""
    names = ["id", "timestamp", "source_type", "source_id", "log_level", "message", "task_id",
             "worker_id", "cycle_number", "metadata"]  # fmt: skip
    [row] = (
        seed.table("system_logs")
        .select(",".join(names))
        .eq("task_id", TASK)
        .eq("log_level", "ERROR")
        .execute()
        .data
    )
    stored = next(r for r in logged if r["message"] == "CUDA out of memory")
    assert datetime.fromisoformat(row["timestamp"]) == stored["timestamp"]
    assert row["timestamp"].endswith("+00:00")
    assert (row["id"], row["task_id"], row["metadata"]) == (str(stored["id"]), TASK, {})
    assert list(row) == names


def test_the_dashboard_reads_only_newer_rows_and_naive_times_are_utc(seed, logged):
    """The dashboard asks for rows after the last one shown (gt); the seed wrote
    datetime.utcnow().isoformat(), zone-less, which PostgREST's UTC sessions read as UTC."""
    shown = (NOW - timedelta(minutes=2, seconds=30)).replace(tzinfo=None).isoformat()
    newer = (
        seed.table("system_logs").select("*").gt("timestamp", shown).order("timestamp", desc=True)
    )
    assert _messages(newer.limit(50).execute().data) == ["Cycle 42 done", "CUDA out of memory"]


def test_a_read_is_cut_at_max_rows_whatever_its_limit(seed, conn):
    """PostgREST's max-rows (1,000 on Supabase) caps a table read silently: the seed's
    reads were cut there (the hub's own reads page through RPC instead)."""
    insert(conn, [entry(message=f"r{i}") for i in range(1005)])
    assert len(seed.table("system_logs").select("id").limit(5000).execute().data) == 1000
    assert len(seed.table("system_logs").select("id").limit(7).execute().data) == 7


def test_the_workers_list_reads_the_seeds_columns(fake, seed, conn):
    """GET workers?select=id,instance_type,last_heartbeat: the seed's names, filterable
    and ordered like any column; instance_type comes from the heartbeat metadata."""
    assert post(fake, "func_worker_heartbeat_with_logs", seed_beat()).status_code == 200
    PsycopgExecutor(conn).run(
        calls.heartbeat_call("gpu-hub", "busy", metadata={"instance_type": "A100-80GB"})
    )
    workers = seed.table("workers").select("id, instance_type, last_heartbeat")
    data: Any = workers.order("last_heartbeat", desc=True).execute().data
    assert [(w["id"], w["instance_type"]) for w in data] == [
        ("gpu-hub", "A100-80GB"),
        (WORKER, None),
    ]
    [one] = seed.table("workers").select("*").eq("id", WORKER).execute().data
    assert datetime.fromisoformat(one["last_heartbeat"]) == datetime.fromisoformat(
        one["last_heartbeat_at"]
    )
    for column in ("id", "instance_type", "last_heartbeat"):  # generated: read-only
        with pytest.raises(psycopg.errors.GeneratedAlways):
            conn.execute(f"UPDATE workers SET {column} = NULL")


def test_the_views_carry_the_seeds_columns(fake, seed, logged):
    """v_recent_errors grouped with error_count, last_error_time, unique_messages;
    v_worker_log_activity with status, last_heartbeat, last_log_time from workers."""
    assert post(fake, "func_worker_heartbeat_with_logs", seed_beat()).status_code == 200
    errors = get(fake, "v_recent_errors?select=worker_id,error_count,last_error_time,"
                 "unique_messages&order=error_count.desc,worker_id.asc")  # fmt: skip
    assert errors.status_code == 200, errors.text
    by_worker = {r["worker_id"]: r for r in errors.json()}
    assert by_worker[WORKER]["error_count"] == 2
    assert sorted(by_worker[WORKER]["unique_messages"]) == ["CUDA out of memory", "early"]
    assert datetime.fromisoformat(by_worker[WORKER]["last_error_time"]) > NOW - timedelta(minutes=3)
    activity = seed.table("v_worker_log_activity").select(
        "worker_id, status, last_heartbeat, last_log_time, log_count").execute().data  # fmt: skip
    row = next(r for r in activity if r["worker_id"] == WORKER)
    assert (row["status"], row["log_count"]) == ("idle", 2)
    assert row["last_heartbeat"] is not None and row["last_log_time"] is not None
    assert next(r for r in activity if r["worker_id"] == "gpu-other")["status"] is None


def test_a_plain_insert_from_the_sql_editor_works(conn):
    """INSERT INTO system_logs (source_type, source_id, log_level, message): the id
    (time-ordered), the time and the severity are filled in; `warn` is stored as WARNING."""
    before = datetime.now(UTC)
    conn.execute(
        "INSERT INTO system_logs (source_type, source_id, log_level, message) VALUES "
        "('api', 'editor', 'ERROR', 'by hand'), ('api', 'editor', 'warn', 'lower case'), "
        "('api', 'editor', 'Fatal', 'alias')"
    )
    stored = rows(conn)
    assert sorted((r["log_level"], r["severity_number"]) for r in stored) == [
        ("CRITICAL", 21),
        ("ERROR", 17),
        ("WARNING", 13),
    ]
    assert all(r["timestamp"] >= before and r["id"].version == 7 for r in stored)
    summary = conn.execute("SELECT func_log_statistics()").fetchone()[0]
    assert summary["errors"] == 2  # counted by the rollups like any other row


def test_a_plain_insert_with_an_unknown_level_is_one_clear_line(conn):
    """The editor gets the hub's message naming the accepted levels; nothing is stored."""
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        conn.execute(
            "INSERT INTO system_logs (source_type, source_id, log_level, message) "
            "VALUES ('api', 'editor', 'LOUD', 'x')"
        )
    assert refused.value.diag.message_primary == (
        "unknown log level 'LOUD'; accepted: DEBUG, INFO, WARNING, ERROR, CRITICAL"
    )
    assert rows(conn) == []


@pytest.fixture
def supabase_fake(secured_db: str) -> Iterator[FakePostgrest]:
    """The stand-in on a database with Supabase's roles: the service key runs as
    service_role, the anon key as anon."""
    with FakePostgrest(secured_db, KEY, role="service_role", anon_key=ANON_KEY) as server:
        yield server


def test_the_anon_key_fallback_is_refused_and_service_role_works(supabase_fake):
    """The seed's scripts fell back to the anon key; the hub grants anon nothing, so every
    read, beat and insert with it is refused (401, 42501), while service_role works."""
    beat = seed_beat("gpu-anon", logs=[seed_log("hello")])
    for response in (
        get(supabase_fake, "system_logs?select=*&limit=1", key=ANON_KEY),
        get(supabase_fake, "workers?select=id,instance_type,last_heartbeat", key=ANON_KEY),
        get(supabase_fake, "v_recent_errors?select=*", key=ANON_KEY),
        post(supabase_fake, "func_worker_heartbeat_with_logs", beat, key=ANON_KEY),
        post(supabase_fake, "func_insert_logs_batch", {"logs": [handler_entry("x")]}, key=ANON_KEY),
    ):
        assert (response.status_code, response.json()["code"]) == (401, "42501"), response.text
    assert post(supabase_fake, "func_worker_heartbeat_with_logs", beat).status_code == 200
    read = get(supabase_fake, "system_logs?select=message,worker_id&worker_id=eq.gpu-anon")
    assert read.json() == [{"message": "hello", "worker_id": "gpu-anon"}]
    workers = get(supabase_fake, "workers?select=id,instance_type,last_heartbeat&id=eq.gpu-anon")
    assert [w["id"] for w in workers.json()] == ["gpu-anon"]
