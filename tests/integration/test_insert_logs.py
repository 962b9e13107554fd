"""func_insert_logs_batch: one bad entry is rejected alone, retries insert nothing twice."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from tests.integration.logrows import entry, insert, insert_raw, rows


def test_valid_batch_is_inserted_with_every_column(conn):
    """A full entry lands with its level normalised and its severity number derived."""
    task = str(uuid.uuid4())
    result = insert(
        conn,
        [
            entry(
                log_level="warn",
                task_id=task,
                worker_id="gpu-1",
                cycle_number=42,
                logger_name="worker.runtime",
                correlation_id="abc123",
                exception="Traceback...",
                metadata={"vram_gb": 71.5},
            )
        ],
    )
    assert (result.success, result.inserted, result.duplicates, result.rejected) == (True, 1, 0, ())
    [row] = rows(conn)
    assert row["log_level"] == "WARNING"
    assert row["severity_number"] == 13
    assert str(row["task_id"]) == task
    assert row["cycle_number"] == 42
    assert row["logger_name"] == "worker.runtime"
    assert row["correlation_id"] == "abc123"
    assert row["exception"] == "Traceback..."
    assert row["metadata"] == {"vram_gb": 71.5}
    assert row["observed_at"] is not None


@pytest.mark.parametrize(
    ("level", "stored", "severity"),
    [
        ("DEBUG", "DEBUG", 5),
        ("info", "INFO", 9),
        ("Warning", "WARNING", 13),
        ("WARN", "WARNING", 13),
        ("error", "ERROR", 17),
        ("CRITICAL", "CRITICAL", 21),
        ("fatal", "CRITICAL", 21),
    ],
)
def test_levels_map_to_opentelemetry_severity(conn, level, stored, severity):
    """Every accepted spelling maps to its canonical name and OpenTelemetry number."""
    assert insert(conn, [entry(log_level=level)]).inserted == 1
    [row] = rows(conn)
    assert (row["log_level"], row["severity_number"]) == (stored, severity)


def test_level_alias_of_the_worker_is_accepted(conn):
    """Workers send "level" instead of "log_level" (seed 004); both work."""
    assert insert(conn, [entry(log_level=None, level="ERROR")]).inserted == 1
    assert rows(conn)[0]["log_level"] == "ERROR"


def test_retried_batch_inserts_nothing_twice(conn):
    """The same (timestamp, id) pairs sent again are counted as duplicates, not stored."""
    batch = [entry(message=f"m{i}") for i in range(20)]
    first = insert(conn, batch)
    again = insert(conn, [*batch, entry(message="new")])
    assert (first.inserted, first.duplicates) == (20, 0)
    assert (again.inserted, again.duplicates) == (1, 20)
    assert len(rows(conn)) == 21


def test_duplicate_within_one_batch_is_stored_once(conn):
    """A batch that repeats an entry stores it once and reports the repeat."""
    one = entry()
    result = insert(conn, [one, one])
    assert (result.inserted, result.duplicates) == (1, 1)


BAD_ENTRIES = [
    (42, "entry must be a JSON object, got a JSON number"),
    ("text", "entry must be a JSON object, got a JSON string"),
    (None, "entry must be a JSON object, got a JSON null"),
    (entry(message=None), 'missing required key "message"'),
    (entry(log_level=None), 'missing required key "log_level" (or its alias "level")'),
    (
        entry(log_level="VERBOSE"),
        "unknown level 'VERBOSE'; accepted: DEBUG, INFO, WARNING (or WARN)",
    ),
    (entry(source_type=None), 'missing required key "source_type"'),
    (entry(source_id="  "), 'missing required key "source_id"'),
    (entry(id="not-a-uuid"), "malformed id 'not-a-uuid'; expected a UUID"),
    (entry(timestamp="yesterday"), "malformed timestamp 'yesterday'; expected ISO 8601"),
    (entry(timestamp="2026-02-30T10:00:00Z"), "malformed timestamp '2026-02-30T10:00:00Z'"),
    (entry(timestamp="2026-11-23T25:00:00Z"), "malformed timestamp"),
    (entry(timestamp="2026-11-23"), "malformed timestamp"),
    (entry(timestamp="2026-11-23T10:60:00Z"), "malformed timestamp"),
    (entry(timestamp="2026-11-23T10:00:60Z"), "malformed timestamp"),
    (entry(timestamp="2026-13-01T10:00:00Z"), "malformed timestamp"),
    (entry(timestamp="0000-01-01T10:00:00Z"), "malformed timestamp"),
    (entry(timestamp="2026-11-23T10:00:00+15:00"), "malformed timestamp"),
    (entry(timestamp="2026-11-23T10:00:00+05:75"), "malformed timestamp"),
    (entry(timestamp="2026-11-23T10:00:00 EST"), "malformed timestamp"),
    (entry(timestamp="1" * 30), "malformed timestamp"),
    (entry(timestamp="2026-11-23T10:00:00." + "1" * 40), "malformed timestamp"),
    (entry(id="{0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7}"), "malformed id"),
    (entry(id="0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7g"), "malformed id"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_ENTRIES)
def test_bad_entry_is_rejected_alone_with_its_reason(conn, bad, reason):
    """The bad entry is reported with its index and reason; its neighbours are inserted."""
    result = insert_raw(conn, [entry(message="before"), bad, entry(message="after")])
    assert result["success"] is True
    assert result["inserted"] == 2
    assert len(result["rejected"]) == 1
    assert result["rejected"][0]["index"] == 1
    assert result["rejected"][0]["reason"].startswith(reason)
    assert [r["message"] for r in rows(conn)] == ["before", "after"]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"message": "x"}, "got a JSON object"),
        ("text", "got a JSON string"),
        (None, "got a JSON null"),
    ],
)
def test_batch_that_is_not_an_array_is_refused_with_a_clear_error(conn, payload, error):
    """A non-array batch returns success=false and says what is accepted."""
    result = insert_raw(conn, payload)
    assert result["success"] is False
    assert result["error"].startswith("logs must be a JSON array of log entry objects")
    assert error in result["error"]


def test_sql_null_batch_is_refused(conn):
    """SQL NULL (not JSON null) gets the same clear refusal."""
    [result] = conn.execute("SELECT func_insert_logs_batch(NULL)").fetchone()
    assert result["success"] is False
    assert "SQL NULL" in result["error"]


def test_empty_batch_is_a_successful_no_op(conn):
    """An empty array inserts nothing and succeeds."""
    assert insert_raw(conn, []) == {
        "success": True,
        "inserted": 0,
        "duplicates": 0,
        "rejected": [],
        "errors": 0,
    }


def test_errors_counts_what_was_not_stored_beside_the_reasons(conn):
    """`errors` (the seed's handler reads it) counts the refused entries, never the
    duplicates; a batch refused whole counts each entry, a non-array counts one."""
    good = entry()
    first = insert_raw(conn, [good, entry(log_level="LOUD"), 7, entry(message=None)])
    assert (first["inserted"], first["errors"], len(first["rejected"])) == (1, 3, 3)
    again = insert_raw(conn, [good])
    assert (again["duplicates"], again["errors"]) == (1, 0)
    assert insert_raw(conn, [{}] * 10_001)["errors"] == 10_001
    assert insert_raw(conn, {"not": "an array"})["errors"] == 1


def test_oversized_batch_is_refused(conn):
    """More than 10,000 entries in one call is refused whole, with the limit named."""
    result = insert_raw(conn, [{}] * 10_001)
    assert result["success"] is False
    assert "at most 10000 entries" in result["error"]


def test_timestamp_formats(conn):
    """ISO 8601 with or without zone (UTC assumed), with offset, and epoch seconds."""
    now = datetime.now(UTC).replace(microsecond=0)
    naive = now.replace(tzinfo=None).isoformat()
    offset = now.astimezone(timezone(timedelta(hours=5, minutes=30)))
    batch = [
        entry(message="z", timestamp=now.isoformat().replace("+00:00", "Z")),
        entry(message="naive", timestamp=naive),
        entry(message="offset", timestamp=offset.isoformat()),
        entry(message="epoch", timestamp=now.timestamp()),
        entry(message="missing", timestamp=None),
    ]
    assert insert(conn, batch).inserted == 5
    stored = {r["message"]: r["timestamp"] for r in rows(conn)}
    for name in ("z", "naive", "offset", "epoch"):
        assert stored[name] == now, name
    assert abs(stored["missing"] - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize("age", [timedelta(days=-400), timedelta(days=31), timedelta(hours=-2)])
def test_timestamp_far_from_now_is_stored_at_arrival_with_original_kept(conn, age):
    """A clock far off (30+ days old, 1+ hour ahead) must not lose the record."""
    original = (datetime.now(UTC) - age).isoformat()
    assert insert(conn, [entry(timestamp=original)]).inserted == 1
    [row] = rows(conn)
    assert abs(row["timestamp"] - datetime.now(UTC)) < timedelta(minutes=1)
    assert row["metadata"]["_ingest"]["timestamp_clamped_from"] == original


def test_recent_past_timestamp_is_kept_as_sent(conn):
    """Logs buffered through an outage of hours keep their own time."""
    sent = (datetime.now(UTC) - timedelta(hours=30)).replace(microsecond=0)
    insert(conn, [entry(timestamp=sent.isoformat())])
    assert rows(conn)[0]["timestamp"] == sent


def test_large_message_exception_and_metadata_are_cut_with_a_note(conn):
    """Oversized fields are truncated (or replaced) and the original size is noted."""
    result = insert(
        conn,
        [
            entry(
                message="m" * 100_000,
                exception="e" * 200_000,
                metadata={"blob": "x" * 200_000, "keep": False},
            )
        ],
    )
    assert result.inserted == 1
    [row] = rows(conn)
    assert len(row["message"]) == 32_768
    assert len(row["exception"]) == 65_536
    notes = row["metadata"]["_ingest"]
    assert notes["message_truncated_from"] == 100_000
    assert notes["exception_truncated_from"] == 200_000
    assert notes["metadata_dropped_bytes"] > 65_536
    assert "blob" not in row["metadata"]


@pytest.mark.parametrize(
    ("metadata", "stored"),
    [([1, 2], {"value": [1, 2]}), ("text", {"value": "text"}), (7, {"value": 7}), (None, {})],
)
def test_metadata_that_is_not_an_object_is_wrapped(conn, metadata, stored):
    """metadata must be an object; anything else is kept under "value"."""
    insert_raw(conn, [entry(metadata=metadata)] if metadata is not None else [entry()])
    assert rows(conn)[0]["metadata"] == stored


@pytest.mark.parametrize("cycle", ["99999999999", "2147483648", "1e3", " ", "-"])
def test_out_of_range_cycle_number_is_dropped_with_a_note(conn, cycle):
    """A cycle number that does not fit an integer never fails the batch."""
    assert insert_raw(conn, [entry(cycle_number=cycle)])["inserted"] == 1
    assert rows(conn)[0]["cycle_number"] is None


def test_boundary_cycle_numbers_are_kept(conn):
    """Both ends of the integer range are stored as sent."""
    insert_raw(
        conn,
        [
            entry(cycle_number=2147483647, message="max"),
            entry(cycle_number="-2147483648", message="min"),
        ],
    )
    assert {r["message"]: r["cycle_number"] for r in rows(conn)} == {
        "max": 2147483647,
        "min": -2147483648,
    }


def test_malformed_task_id_and_cycle_are_dropped_with_a_note(conn):
    """A bad task_id or cycle_number is not worth losing the log line over."""
    insert(conn, [entry(task_id="task-7", cycle_number="4.5")])
    [row] = rows(conn)
    assert row["task_id"] is None and row["cycle_number"] is None
    assert row["metadata"]["_ingest"] == {
        "invalid_task_id": "task-7",
        "invalid_cycle_number": "4.5",
    }


def test_uuid_spellings_are_accepted(conn):
    """Upper case, no hyphens and braces are all the same UUID."""
    value = uuid.uuid4()
    insert(conn, [entry(id=str(value).upper(), task_id="{" + value.hex + "}")])
    [row] = rows(conn)
    assert row["id"] == value and row["task_id"] == value


def test_entry_without_id_gets_a_time_ordered_one(conn):
    """The server makes a UUIDv7 from the entry's time when the client sent none."""
    insert(conn, [entry(id=None)])
    [row] = rows(conn)
    assert row["id"].version == 7
    millis = int.from_bytes(row["id"].bytes[:6], "big")
    assert abs(millis / 1000 - row["timestamp"].timestamp()) < 0.002


def test_nul_and_lone_surrogates_are_replaced_by_the_client(conn):
    """jsonb cannot carry NUL or lone surrogates; the client repairs them, keeps the row."""
    result = insert(conn, [entry(message="a\x00b\ud800c", metadata={"k\x00": "v\udfff"})])
    assert result.inserted == 1
    [row] = rows(conn)
    assert row["message"] == "a\ufffdb\ufffdc"
    assert row["metadata"] == {"k\ufffd": "v\ufffd"}


def test_raw_nul_in_jsonb_is_refused_before_any_function(conn):
    """Why func_insert_logs_batch takes json: PostgreSQL refuses \\u0000 in jsonb for the
    whole statement, before a function could repair it."""
    with pytest.raises(psycopg.errors.UntranslatableCharacter):
        conn.execute("SELECT %s::jsonb", ['[{"message": "a\\u0000"}]'])


def test_rows_for_a_day_without_partition_land_in_the_default_partition(conn):
    """No insert ever fails for want of a partition."""
    far = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    assert insert(conn, [entry(timestamp=far)]).inserted == 1
    [(where,)] = conn.execute("SELECT tableoid::regclass::text FROM system_logs").fetchall()
    assert where == "system_logs_default"


@pytest.mark.parametrize(
    "function", ["func_insert_logs_batch", "func_insert_log_entries", "func_ingest_staged_logs"]
)
def test_set_based_insert_has_no_row_loop(conn, function):
    """The insert functions have no FOR/LOOP and no EXCEPTION block (no per-row
    subtransaction)."""
    [body] = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function]).fetchone()
    assert not re.search(r"\bLOOP\b", body, re.IGNORECASE)
    assert not re.search(r"\bEXCEPTION\s+WHEN\b", body, re.IGNORECASE)
