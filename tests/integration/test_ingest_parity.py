"""The direct COPY path stores exactly what ``func_insert_logs_batch`` stores, or declines.

The staged path (``func_insert_staged_logs``, COPY into a staging table) and
``func_insert_logs_batch`` share one definition of the rules in SQL; the first test
below feeds both the same hostile entries and compares every stored column and every
rejection reason, so they cannot drift apart again.

The log handler's fastest path (``orchestrator/logs/sinks/postgres.py``) writes rows by
binary COPY without the SQL function, so whatever it restates of the function's rules
(limits, clamps, uuid and int32 checks, trimming) could drift from the SQL. Each
hostile or edge entry below goes through ``func_insert_logs_batch`` and through the
direct path; where the direct path takes the entry, the two stored rows must agree
column by column; where it declines, the batch goes the staged way, where the SQL
rules apply. Each case also says which way it must go, so the direct path is really
exercised (a path that declined everything would agree with anything).
"""

from __future__ import annotations

import time
import types
import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest

from orchestrator.db.jsonsafe import dumps_json
from orchestrator.db.log_copy import DIRECT_COLUMNS
from orchestrator.logs.sinks import postgres as postgres_sink
from orchestrator.logs.sinks.postgres import METADATA_TEXT_MAX, PostgresSink, direct_rows
from tests.integration.logrows import handler_entry, insert, insert_raw

# Every column the direct path writes; ids as text, so both sides compare as strings.
NAMES = DIRECT_COLUMNS
COLUMNS = tuple(f"{c}::text" if c in ("id", "task_id") else f'"{c}"' for c in NAMES)
DAY = 86400.0


def _bloated_metadata() -> dict[str, Any]:
    """Many tiny members: the jsonb takes several times the JSON text's bytes."""
    metadata: dict[str, Any] = {}
    i = 0
    while len(dumps_json(metadata)) < METADATA_TEXT_MAX - 200:
        metadata[f"k{i}"] = 0 if i % 3 else [] if i % 2 else {}
        i += 1
    return metadata


def cases() -> list[tuple[str, dict[str, Any], bool]]:
    """(name, entry overrides, whether the direct path takes it)."""
    now = time.time()
    return [
        ("plain", {}, True),
        (
            "every column",
            {
                "task_id": str(uuid.uuid4()),
                "worker_id": "gpu-7",
                "cycle_number": 12,
                "correlation_id": "c" * 32,
                "exception": "Traceback (most recent call last):\n  boom",
                "metadata": {"gpu": 0, "nested": {"a": [1, 2.5, None, True]}, "_ingest": "mine"},
            },
            True,
        ),
        ("message at the limit", {"message": "m" * 32768}, True),
        ("message over the limit", {"message": "m" * 32769}, False),
        ("wide characters at the limit", {"message": "\U0001f600\u0301" * 16384}, True),
        ("line separators", {"message": "a\u2028b\r\nc\td\u0085"}, True),
        ("exception at the limit", {"exception": "e" * 65536}, True),
        ("exception over the limit", {"exception": "e" * 65537}, False),
        ("long logger name", {"logger_name": "l" * 300}, True),
        ("no logger name", {"logger_name": None}, True),
        ("empty worker id", {"worker_id": ""}, True),
        ("long worker id", {"worker_id": "w" * 300}, True),
        ("empty correlation id", {"correlation_id": ""}, True),
        ("long correlation id", {"correlation_id": "c" * 200}, True),
        ("long source type", {"source_type": "s" * 100}, True),
        ("long source id", {"source_id": "i" * 300}, True),
        ("spaces around the source type", {"source_type": " worker "}, False),
        ("blank source id", {"source_id": "  "}, False),
        ("empty source type", {"source_type": ""}, False),
        ("int32 minimum cycle", {"cycle_number": -(2**31)}, True),
        ("cycle beyond int32", {"cycle_number": 2**31}, False),
        ("cycle as text", {"cycle_number": "5"}, False),
        ("cycle as a boolean", {"cycle_number": True}, False),
        ("lower-case level", {"log_level": "warning"}, False),
        ("alias level", {"log_level": "WARN"}, False),
        ("unknown level", {"log_level": "LOUD"}, False),
        ("upper-case task id", {"task_id": str(uuid.uuid4()).upper()}, True),
        ("task id without hyphens", {"task_id": uuid.uuid4().hex}, False),
        ("malformed task id", {"task_id": "task-7"}, False),
        ("malformed id", {"id": "not-a-uuid"}, False),
        ("45 minutes ahead", {"timestamp": now + 2700}, True),
        ("two hours ahead", {"timestamp": now + 7200}, False),
        ("28 days old", {"timestamp": now - 28 * DAY}, True),
        ("29.5 days old", {"timestamp": now - 29.5 * DAY}, False),
        ("40 days old", {"timestamp": now - 40 * DAY}, False),
        ("integer time", {"timestamp": int(now) - 5}, True),
        ("metadata that bloats as jsonb", {"metadata": _bloated_metadata()}, True),
        ("large metadata", {"metadata": {"blob": "x" * 70000}}, False),
        ("metadata not an object", {"metadata": ["a", 1]}, False),
    ]


def hostile_cases() -> list[tuple[str, dict[str, Any]]]:
    """Entries only the SQL rules decide about (the direct path declines them all)."""
    deep: Any = "bottom"
    for _ in range(150):
        deep = {"d": deep}
    return [
        ("lower-case warning", {"log_level": "warning"}),
        ("WARN", {"log_level": "WARN"}),
        ("FATAL", {"log_level": " fatal "}),
        ("blank source id", {"source_id": "   "}),
        ("spaces around the source", {"source_type": " worker ", "source_id": " gpu-1 "}),
        ("cycle as text", {"cycle_number": "5"}),
        ("cycle beyond int32", {"cycle_number": 2**32 + 42}),
        ("cycle as a boolean", {"cycle_number": True}),
        ("cycle as words", {"cycle_number": "fifth"}),
        ("metadata a list", {"metadata": ["a", 1]}),
        ("metadata a number", {"metadata": 7}),
        ("metadata null", {"metadata": None}),
        (
            "metadata over 64 KiB of jsonb, under it in characters",
            {"metadata": {"t": "\u00e9" * 40000}},
        ),
        ("metadata 150 deep", {"metadata": deep}),
        (
            "client _ingest kept beside the notes",
            {"metadata": {"_ingest": {"mine": 1}}, "task_id": "t-1"},
        ),
        ("two hours ahead", {"timestamp": time.time() + 7200}),
        ("40 days old", {"timestamp": time.time() - 40 * DAY}),
        ("message over the limit", {"message": "m" * 40000}),
        ("exception over the limit", {"exception": "e" * 70000}),
        ("malformed id", {"id": "not-a-uuid"}),
        ("unknown level", {"log_level": "LOUD"}),
        ("no message", {"message": None}),
    ]


def test_the_staged_path_stores_what_the_batch_function_stores(db_url, conn):
    """Same raw entry (no client-side cleaning) through func_insert_logs_batch and through
    the staged COPY path: the same row, or the same rejection with the same reason."""
    sink = PostgresSink(db_url)
    problems: list[str] = []
    try:
        for name, overrides in hostile_cases() + [(n, o) for n, o, _ in cases()]:
            entry = handler_entry(**overrides)
            by_batch = insert_raw(conn, [entry])
            row_batch = stored(conn, entry["id"]) if by_batch["inserted"] else None
            conn.execute("DELETE FROM system_logs; DELETE FROM system_log_server_timed_ids")
            by_staged = sink.send_staged([entry])
            row_staged = stored(conn, entry["id"]) if by_staged.inserted else None
            conn.execute("DELETE FROM system_logs; DELETE FROM system_log_server_timed_ids")
            reasons = [r["reason"] for r in by_batch["rejected"]]
            if reasons != [r.reason for r in by_staged.rejected]:
                problems.append(f"{name}: batch {reasons} != staged {by_staged.rejected}")
            elif (row_batch is None) != (row_staged is None):
                problems.append(f"{name}: stored by one path only")
            elif row_batch is not None and row_staged is not None:
                notes = row_batch["metadata"].get("_ingest")
                if isinstance(notes, dict) and "timestamp_clamped_from" in notes:
                    row_batch["timestamp"] = row_staged["timestamp"]  # both arrival times
                problems.extend(f"{name}: {d}" for d in differences(row_batch, row_staged))
    finally:
        sink.close()
    assert problems == []


def stored(conn: psycopg.Connection[Any], log_id: str) -> dict[str, Any] | None:
    """The row with ``log_id``, by column name, or None."""
    row = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM system_logs WHERE id::text = lower(%s)", [log_id]
    ).fetchone()
    return None if row is None else dict(zip(NAMES, row, strict=True))


def differences(by_sql: dict[str, Any], by_copy: dict[str, Any]) -> list[str]:
    """The columns that differ. Times may differ by one microsecond: PostgreSQL turns the
    float seconds into microseconds with its own rounding (see epoch_microseconds)."""
    found = []
    for name in NAMES:
        a, b = by_sql[name], by_copy[name]
        if name == "id" and a is not None and b is not None:
            a, b = a.lower(), b.lower()
        close = isinstance(a, datetime) and isinstance(b, datetime)
        if close and abs((a - b).total_seconds()) <= 1e-6:
            continue
        if a != b:
            found.append(f"{name}: SQL {str(a)[:80]!r} != COPY {str(b)[:80]!r}")
    return found


def test_the_direct_copy_path_stores_what_the_sql_function_stores(db_url, conn):
    """Same entry, both ways: the direct path either declines it or stores the very row
    func_insert_logs_batch stores (or, for a rejected entry, declines it)."""
    sink = PostgresSink(db_url)
    problems: list[str] = []
    try:
        for name, overrides, goes_direct in cases():
            entry = handler_entry(**overrides)
            result = insert(conn, [entry])
            by_sql = stored(conn, entry["id"]) if not result.rejected else None
            conn.execute("DELETE FROM system_logs")
            rows = direct_rows([entry], sink.copier.server_offset())
            if (rows is not None) != goes_direct:
                problems.append(f"{name}: direct path {'took' if rows else 'declined'} it")
                continue
            if rows is None:
                continue
            if by_sql is None:
                problems.append(f"{name}: the SQL function rejected what COPY takes")
                continue
            assert sink.copier.copy_direct(rows), name
            by_copy = stored(conn, entry["id"])
            conn.execute("DELETE FROM system_logs")
            assert by_copy is not None, name
            problems.extend(f"{name}: {d}" for d in differences(by_sql, by_copy))
    finally:
        sink.close()
    assert problems == []


def test_a_client_clock_an_hour_ahead_is_clamped_on_every_path(db_url, conn, monkeypatch):
    """A process whose clock runs two hours ahead stamps its records two hours into the
    server's future: func_insert_logs_batch stores them at arrival time, and so must the
    direct sink (it once compared the offset-corrected time and stored the raw one)."""
    ahead = types.SimpleNamespace(time=lambda: time.time() + 7200)
    monkeypatch.setattr(postgres_sink, "time", ahead)
    monkeypatch.setattr("orchestrator.db.log_copy.time", ahead)
    sink = PostgresSink(db_url)
    try:
        by_sql_entry = handler_entry(timestamp=ahead.time())
        insert(conn, [by_sql_entry])
        by_sink_entry = handler_entry(timestamp=ahead.time())
        assert sink.send([by_sink_entry]).inserted == 1
    finally:
        sink.close()
    server_now = conn.execute("SELECT now()").fetchone()[0]
    for entry in (by_sql_entry, by_sink_entry):
        row = stored(conn, entry["id"])
        assert row is not None
        assert abs((row["timestamp"] - server_now).total_seconds()) < 60
        assert "timestamp_clamped_from" in row["metadata"]["_ingest"]


@pytest.mark.parametrize("cycle", [2**31, -(2**31) - 1, True, 2**40])
def test_the_staged_path_never_stores_a_cycle_it_was_not_given(db_url, conn, cycle):
    """Binary COPY into the staging table's int4 wrapped 2**31 round to -2**31 and sent
    True as 1; such a cycle number now arrives as NULL, as the SQL function stores it."""
    entry = handler_entry(cycle_number=cycle)
    sink = PostgresSink(db_url)
    try:
        assert sink.send_staged([entry]).inserted == 1
    finally:
        sink.close()
    row = stored(conn, entry["id"])
    assert row is not None and row["cycle_number"] is None
