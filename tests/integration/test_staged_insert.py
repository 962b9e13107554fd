"""The staged fast path (sql/functions/logs/ingest.sql): COPY into the staging table, then one idempotent INSERT."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from orchestrator.db.binary import register_copy_dumpers
from orchestrator.db.log_copy import STAGE_COPY, STAGE_TYPES
from orchestrator.logs.sinks.postgres import PostgresSink, _stage_row
from tests.integration.logrows import handler_entry, rows

_entry = handler_entry


def _stage_and_insert(conn, entries):
    register_copy_dumpers(conn)  # metadata goes as JSON text, as the sink sends it
    with conn.transaction():
        conn.execute("SELECT func_prepare_log_stage()")
        with conn.cursor().copy(STAGE_COPY) as copy:
            copy.set_types(STAGE_TYPES)
            for i, e in enumerate(entries):
                copy.write_row(_stage_row(i, e))
        return conn.execute("SELECT func_insert_staged_logs()").fetchone()[0]


def test_staged_rows_land_and_a_retry_is_all_duplicates(conn):
    """Same rows twice: inserted once, then reported as duplicates."""
    batch = [_entry(message=f"m{i}", task_id=str(uuid.uuid4()), cycle_number=i) for i in range(10)]
    assert _stage_and_insert(conn, batch) == {
        "success": True,
        "inserted": 10,
        "duplicates": 0,
        "rejected": [],
        "errors": 0,
    }
    assert _stage_and_insert(conn, batch)["duplicates"] == 10
    assert len(rows(conn)) == 10


def test_two_batches_in_one_transaction_do_not_mix(conn):
    """The staging table is emptied after each insert, not only at commit."""
    with conn.transaction():
        first = _stage_and_insert(conn, [_entry()])
        second = _stage_and_insert(conn, [_entry(), _entry()])
    assert (first["inserted"], second["inserted"], second["duplicates"]) == (1, 2, 0)


def test_staged_repairs_match_the_json_path(conn):
    """Clock far off, long message, bad task_id: stored and noted as the jsonb path does."""
    _stage_and_insert(
        conn,
        [
            _entry(
                timestamp=time.time() - 90 * 86400,
                message="x" * 40000,
                task_id="task-7",
                metadata=[1, 2],
            )
        ],
    )
    [row] = rows(conn)
    assert len(row["message"]) == 32768 and row["task_id"] is None
    notes = row["metadata"]["_ingest"]
    assert set(notes) == {"timestamp_clamped_from", "message_truncated_from", "invalid_task_id"}
    assert row["metadata"]["value"] == [1, 2]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [({"log_level": "LOUD"}, "unknown level 'LOUD'"), ({"id": "nope"}, "malformed id 'nope'")],
)
def test_a_bad_staged_row_is_rejected_alone_with_its_reason(conn, bad, reason):
    """The staged path applies func_insert_logs_batch's rules: the bad row is rejected
    with its index and reason, the others are stored."""
    result = _stage_and_insert(conn, [_entry(), _entry(**bad), _entry()])
    assert result["inserted"] == 2
    assert [(r["index"], r["reason"][: len(reason)]) for r in result["rejected"]] == [(1, reason)]
    assert len(rows(conn)) == 2


def test_the_sink_counts_a_rejected_row_and_keeps_the_others(db_url):
    """Through the sink: the refused row is named, the other rows of the batch are kept."""
    from orchestrator.logs.setup import DatabaseLogHandler

    handler = DatabaseLogHandler(sink=lambda: PostgresSink(db_url), source_id="t")
    try:
        handler._sink.send([_entry()])  # warm: the sink works
        entries = [_entry(message=f"ok{i}") for i in range(7)] + [_entry(log_level="LOUD")]
        handler._parts = [entries]
        handler._deliver_parts()
        stats = handler.stats()
    finally:
        handler.close(timeout=2)
    assert stats["rejected"] == 1 and "unknown level 'LOUD'" in stats["last_rejection"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM system_logs").fetchone() == (8,)
