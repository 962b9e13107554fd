"""The worker heartbeat against a real PostgreSQL: the row, its logs, failures, concurrency."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest

from orchestrator.db.calls import Call
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.errors import DatabaseUnavailable, InputRefused
from orchestrator.logs.worker import (
    LogBuffer,
    WorkerDatabaseLogHandler,
    WorkerHeartbeat,
    heartbeat_call,
)
from tests.integration.logrows import entry, rows

TASK = "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a"
OTHER_TASK = "0192f0c1-7a5e-7c3d-9b1a-000000000002"


def worker_row(conn: psycopg.Connection[Any], worker_id: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM workers WHERE worker_id = %s", [worker_id]).fetchone()


def bare(message: str, level: str = "INFO") -> dict[str, Any]:
    """A log entry as a worker might build it by hand: no source, worker or task keys."""
    return {"id": str(uuid.uuid4()), "log_level": level, "message": message}


class LostReply:
    """Runs the call, then fails as if the connection dropped before the reply arrived."""

    def __init__(self, inner: PsycopgExecutor) -> None:
        self.inner = inner

    def run(self, call: Call[Any]) -> Any:
        self.inner.run(call)
        raise ConnectionResetError("connection lost before the reply")


@pytest.fixture
def closed_executor(db_url: str) -> PsycopgExecutor:
    """An executor whose connection is already closed: every call fails client-side."""
    conn = psycopg.connect(db_url, autocommit=True)
    conn.close()
    return PsycopgExecutor(conn)


def test_first_heartbeat_creates_the_row_and_later_ones_update_and_count(conn):
    """The first beat inserts the worker, later beats update status and task and count."""
    run = PsycopgExecutor(conn).run
    first = run(heartbeat_call("gpu-1", "starting"))
    assert (first.worker_id, first.status, first.heartbeat_count) == ("gpu-1", "starting", 1)
    assert isinstance(first.last_heartbeat_at, datetime) and first.last_heartbeat_at.tzinfo
    assert first.logs.success and first.logs.inserted == 0
    run(heartbeat_call("gpu-1", "busy", uuid.UUID(TASK)))
    assert worker_row(conn, "gpu-1")["current_task_id"] == uuid.UUID(TASK)
    third = run(heartbeat_call("gpu-1", "IDLE"))
    row = worker_row(conn, "gpu-1")
    assert (row["status"], row["current_task_id"], row["heartbeat_count"]) == ("idle", None, 3)
    assert third.heartbeat_count == 3 and third.last_heartbeat_at == row["last_heartbeat_at"]
    assert row["first_seen_at"] <= row["last_heartbeat_at"]


def test_vram_and_hostname_land_in_columns_and_metadata_merges(conn):
    """The seed's VRAM/host fields get columns; later beats merge metadata, junk is ignored."""
    run = PsycopgExecutor(conn).run
    meta = {"vram_total_mb": 81920, "vram_used_mb": 40000, "hostname": "gpu-7", "driver": "550"}
    run(heartbeat_call("gpu-7", metadata=meta))
    run(heartbeat_call("gpu-7", "busy", metadata={"vram_used_mb": "41000.4", "gpu": "H100"}))
    row = worker_row(conn, "gpu-7")
    assert (row["vram_total_mb"], row["vram_used_mb"], row["hostname"]) == (81920, 41000, "gpu-7")
    assert row["metadata"] == {**meta, "vram_used_mb": "41000.4", "gpu": "H100"}
    run(heartbeat_call("gpu-7", metadata={"vram_used_mb": "lots", "vram_total_mb": 1e30}))
    row = worker_row(conn, "gpu-7")
    assert (row["vram_total_mb"], row["vram_used_mb"]) == (81920, 41000)
    assert row["heartbeat_count"] == 3


def test_concurrent_heartbeats_of_one_worker_lose_no_update(db_url, conn):
    """20 threads x 10 beats on their own connections: count 200, each count seen once."""
    threads_n, beats_n = 20, 10
    barrier = threading.Barrier(threads_n)
    counts: list[int] = []
    errors: list[BaseException] = []

    def beat(n: int) -> None:
        try:
            with PsycopgExecutor.connect(db_url) as executor:
                barrier.wait()
                for i in range(beats_n):
                    meta = {f"thread_{n}": i}
                    result = executor.run(heartbeat_call("gpu-hot", "busy", metadata=meta))
                    counts.append(result.heartbeat_count)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=beat, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    total = threads_n * beats_n
    assert sorted(counts) == list(range(1, total + 1))
    row = worker_row(conn, "gpu-hot")
    assert row["heartbeat_count"] == total
    assert row["metadata"] == {f"thread_{n}": beats_n - 1 for n in range(threads_n)}


def test_logs_ride_along_with_defaults_filled_and_the_entrys_own_keys_win(conn):
    """Missing or null source/worker/task keys get the heartbeat's; present ones are kept."""
    own = entry(message="own", source_type="worker_gpu", source_id="gpu-9/0", task_id=OTHER_TASK)
    own["worker_id"] = "gpu-9-child"
    nul = {**bare("null task and a NUL \x00 byte"), "task_id": None, "worker_id": None}
    logs = [bare("bare"), own, nul]
    result = PsycopgExecutor(conn).run(heartbeat_call("gpu-9", "busy", TASK, logs=logs))
    assert (result.logs.inserted, result.logs.rejected) == (3, ())
    got = {
        r["message"]: (r["source_type"], r["source_id"], r["worker_id"], str(r["task_id"]))
        for r in rows(conn)
    }
    assert got == {
        "bare": ("worker", "gpu-9", "gpu-9", TASK),
        "own": ("worker_gpu", "gpu-9/0", "gpu-9-child", OTHER_TASK),
        "null task and a NUL \ufffd byte": ("worker", "gpu-9", "gpu-9", TASK),
    }


def test_rejected_entries_are_reported_and_do_not_fail_the_heartbeat(conn):
    """An unknown level and a non-object are rejected with reasons; the rest lands."""
    logs = [bare("fine"), bare("too loud", level="LOUD"), 42]
    result = PsycopgExecutor(conn).run(heartbeat_call("gpu-2", logs=logs))
    assert result.heartbeat_count == 1 and result.logs.success
    assert result.logs.inserted == 1
    assert [r.index for r in result.logs.rejected] == [1, 2]
    assert "unknown level 'LOUD'" in result.logs.rejected[0].reason
    assert "must be a JSON object, got a JSON number" in result.logs.rejected[1].reason
    assert [r["message"] for r in rows(conn)] == ["fine"]


@pytest.mark.parametrize(
    ("worker_id", "status", "message"),
    [
        ("gpu-3", "sleeping", r"unknown worker status 'sleeping'; accepted: starting, idle, busy"),
        ("  ", "idle", r"worker_id must be a non-blank text .* got '  '"),
    ],
)
def test_caller_bugs_fail_the_heartbeat_with_a_clear_error(conn, worker_id, status, message):
    """A bad status or blank worker_id raises invalid_parameter_value; nothing is written."""
    call = heartbeat_call(worker_id, status, logs=[bare("lost with the call")])
    with pytest.raises(InputRefused, match=message) as refused:
        PsycopgExecutor(conn).run(call)
    assert refused.value.sqlstate == "22023"  # invalid_parameter_value
    assert conn.execute("SELECT count(*) FROM workers").fetchone() == (0,)
    assert rows(conn) == []


def test_failed_heartbeat_restores_its_logs_and_the_next_beat_delivers_them_once(
    conn, closed_executor
):
    """Connection closed: the beat raises, logs go back in front; then all land, in order."""
    buffer = LogBuffer()
    for n in range(3):
        buffer.add(bare(f"early {n}"))
    with pytest.raises(DatabaseUnavailable):
        WorkerHeartbeat(closed_executor, "gpu-4", buffer).beat()
    assert len(buffer) == 3 and buffer.stats()["in_flight"] == 0
    buffer.add(bare("later"))
    # A beat that commits but loses its reply: resent with the same ids, so no copies.
    with pytest.raises(ConnectionResetError):
        WorkerHeartbeat(LostReply(PsycopgExecutor(conn)), "gpu-4", buffer).beat()
    heartbeat = WorkerHeartbeat(PsycopgExecutor(conn), "gpu-4", buffer)
    result = heartbeat.beat()
    assert (result.logs.inserted, result.logs.duplicates) == (0, 4)
    assert [r["message"] for r in rows(conn)] == ["early 0", "early 1", "early 2", "later"]
    assert len(buffer) == 0 and buffer.stats()["in_flight"] == 0
    assert heartbeat.stats()["sent"] == 4 and result.heartbeat_count == 2


def test_a_beat_takes_at_most_max_logs_per_beat_oldest_first(conn):
    """A backlog goes out in order over several beats of max_logs_per_beat each."""
    buffer = LogBuffer()
    for n in range(7):
        buffer.add(bare(f"m{n}"))
    heartbeat = WorkerHeartbeat(PsycopgExecutor(conn), "gpu-5", buffer, max_logs_per_beat=3)
    assert [heartbeat.beat().logs.inserted for _ in range(4)] == [3, 3, 1, 0]
    assert [r["message"] for r in rows(conn)] == [f"m{n}" for n in range(7)]


def test_log_part_failure_keeps_the_heartbeat_and_the_logs(conn):
    """If storing logs fails in the database, the beat still lands and the logs are kept."""
    buffer = LogBuffer()
    buffer.add(bare("survives"))
    heartbeat = WorkerHeartbeat(PsycopgExecutor(conn), "gpu-6", buffer)
    conn.execute("ALTER TABLE system_logs RENAME TO system_logs_away")
    result = heartbeat.beat()
    assert result.heartbeat_count == 1 and not result.logs.success
    assert "were not stored" in (result.logs.error or "") and len(buffer) == 1
    conn.execute("ALTER TABLE system_logs_away RENAME TO system_logs")
    assert heartbeat.beat().logs.inserted == 1
    assert heartbeat.stats()["log_failures"] == 1 and len(buffer) == 0


def test_restore_puts_entries_in_front_and_counts_what_no_longer_fits():
    """Taken entries always fit back (their room stays reserved); extra ones overflow."""
    buffer = LogBuffer(capacity=5)
    for n in range(5):
        buffer.add(bare(f"m{n}", level="WARNING"))
    taken = buffer.take(2)
    assert not buffer.add(bare("no room while in flight", level="ERROR"))
    foreign = [bare("foreign a"), bare("foreign b")]
    assert buffer.restore(taken + foreign) == 2
    assert buffer.stats()["dropped"] == {
        "buffer_full_warning_plus": 1,
        "heartbeat_failed_overflow": 2,
    }
    assert [e["message"] for e in buffer.take(10)] == [f"m{n}" for n in range(5)]
    buffer.confirm(5)
    assert buffer.restore(foreign) == 2 and len(buffer) == 2


def test_handler_buffer_and_heartbeat_end_to_end(conn):
    """Real logging calls inside set_task_context() arrive with task, worker and context."""
    buffer = LogBuffer()
    handler = WorkerDatabaseLogHandler("gpu-8", buffer, logging.DEBUG)
    logger = logging.getLogger("test.worker.e2e")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    driver = logging.getLogger("psycopg.test")
    driver.addHandler(handler)
    try:
        handler.set_task_context(TASK)
        logger.info("step %d of %d", 1, 2, extra={"step": 1})
        try:
            raise RuntimeError("CUDA out of memory")
        except RuntimeError:
            logger.exception("generation failed")
        driver.warning("driver chatter is not shipped")
        handler.clear_task_context()
        logger.debug("between tasks")
        result = WorkerHeartbeat(PsycopgExecutor(conn), "gpu-8", buffer).beat("idle")
    finally:
        logger.removeHandler(handler)
        driver.removeHandler(handler)
    assert result.logs.inserted == 3 and len(buffer) == 0
    got = rows(conn)
    assert [(r["message"], r["log_level"], r["task_id"]) for r in got] == [
        ("step 1 of 2", "INFO", uuid.UUID(TASK)),
        ("generation failed", "ERROR", uuid.UUID(TASK)),
        ("between tasks", "DEBUG", None),
    ]
    assert {(r["source_type"], r["source_id"], r["worker_id"]) for r in got} == {
        ("worker", "gpu-8", "gpu-8")
    }
    assert got[0]["metadata"] == {"step": 1} and got[0]["logger_name"] == "test.worker.e2e"
    assert "RuntimeError: CUDA out of memory" in got[1]["exception"]
