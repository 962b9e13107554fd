"""The count rollups of sql/functions/logs/rollups.sql: every write path counted once, exact statistics.

The oracle everywhere is a recount of the raw rows (``count(*) ... GROUP BY`` over
``system_logs``), compared with what the trigger maintained and what the statistics
function reads.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.db.binary import register_copy_dumpers
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.logs import calls
from orchestrator.logs.sinks.postgres import PostgresSink, direct_rows
from tests.integration.logrows import entry, handler_entry, insert

ROLLUPS = Path(__file__).parents[2] / "sql" / "functions" / "logs" / "rollups.sql"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

RAW_COUNTS = """
SELECT r.resolution, date_trunc(r.resolution, s."timestamp", 'UTC'), s.log_level,
       s.source_type, s.source_id, s.worker_id, count(*),
       count(*) FILTER (WHERE s.severity_number >= 17), max(s."timestamp")
  FROM system_logs s CROSS JOIN (VALUES ('minute'), ('hour')) AS r(resolution)
 GROUP BY 1, 2, 3, 4, 5, 6
"""
ROLLUP_COUNTS = """
SELECT resolution, bucket, log_level, source_type, source_id, worker_id, count, errors, last_seen
  FROM system_log_counts
"""
RAW_ERRORS = """
SELECT date_trunc('hour', "timestamp", 'UTC'), log_level, source_type,
       md5(left(message, 200))::uuid, count(*), min("timestamp"), max("timestamp"),
       (array_agg(message ORDER BY "timestamp", id))[1]
  FROM system_logs WHERE severity_number >= 17
 GROUP BY 1, 2, 3, 4
"""
ROLLUP_ERRORS = """
SELECT bucket, log_level, source_type, fingerprint, count, first_seen, last_seen, message
  FROM system_log_error_counts
"""


def assert_rollups_match_raw(conn: psycopg.Connection[Any]) -> None:
    """Both rollups hold exactly what a recount of the stored log rows gives."""
    assert set(conn.execute(ROLLUP_COUNTS).fetchall()) == set(conn.execute(RAW_COUNTS).fetchall())
    assert set(conn.execute(ROLLUP_ERRORS).fetchall()) == set(conn.execute(RAW_ERRORS).fetchall())


def counted(conn: psycopg.Connection[Any]) -> int:
    """Rows counted by the hour rollup (the minute rollup is checked against the raw rows)."""
    row = conn.execute(
        "SELECT coalesce(sum(count), 0) FROM system_log_counts WHERE resolution = 'hour'"
    ).fetchone()
    return int(row[0]) if row else 0


def stored(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM system_logs").fetchone()
    return int(row[0]) if row else 0


def mixed_entries(n: int, start: datetime, span: timedelta, seed: int) -> list[dict[str, Any]]:
    """n entries at random instants of [start, start + span): a few workers, sources
    (one without a worker), every level, a handful of messages."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        worker = rng.choice(["gpu-1", "gpu-2", "gpu-3", None])
        out.append(
            entry(
                timestamp=(start + span * rng.random()).isoformat(),
                log_level=rng.choice(LEVELS),
                source_type="worker" if worker else "orchestrator_gpu",
                source_id=worker or "orch-1",
                worker_id=worker,
                message=rng.choice(["oom", "timeout", "x" * 250 + str(rng.randrange(3))]),
            )
        )
    return out


def test_the_jsonb_rpc_is_counted_and_a_retry_is_not(conn):
    """func_insert_logs_batch: inserted rows counted; the same batch again adds nothing."""
    batch = mixed_entries(300, datetime.now(UTC) - timedelta(hours=2), timedelta(hours=2), 1)
    assert insert(conn, batch).inserted == 300
    assert insert(conn, batch).duplicates == 300
    assert counted(conn) == stored(conn) == 300
    assert_rollups_match_raw(conn)


def test_the_staged_copy_path_is_counted_and_a_retry_is_not(db_url):
    """func_insert_staged_logs (sql/functions/logs/ingest.sql, the sink's fallback): counted once."""
    sink = PostgresSink(db_url)
    now = time.time()
    batch = [
        handler_entry(timestamp=now - i, log_level=LEVELS[i % 5], message=f"m{i % 3}")
        for i in range(200)
    ]
    assert sink.send_staged(batch).inserted == 200
    assert sink.send_staged(batch).duplicates == 200
    conn = sink.copier._connection()
    assert counted(conn) == stored(conn) == 200
    assert_rollups_match_raw(conn)


def test_the_handlers_direct_copy_into_the_parent_is_counted(db_url):
    """The sink's binary COPY goes into public.system_logs, the parent: the trigger sees
    it. Its retry (a unique violation) falls back to the staged path and adds nothing."""
    sink = PostgresSink(db_url)
    now = time.time()
    batch = [
        handler_entry(timestamp=now - i / 10, log_level=LEVELS[i % 5], worker_id=f"w{i % 4}")
        for i in range(500)
    ]
    rows = direct_rows(batch, sink.copier.server_offset())
    assert rows is not None and sink.copier.copy_direct(rows)  # the direct path, not staged
    conn = sink.copier._connection()
    assert counted(conn) == stored(conn) == 500
    assert sink.send(batch).duplicates == 500
    assert counted(conn) == stored(conn) == 500
    assert_rollups_match_raw(conn)


def test_a_plain_copy_and_insert_into_the_parent_are_counted(conn):
    """Any statement into the parent, COPY or INSERT ... SELECT, fires the trigger once."""
    register_copy_dumpers(conn)
    conn.execute(
        'INSERT INTO system_logs (id, "timestamp", source_type, source_id, log_level, '
        "severity_number, message) SELECT gen_random_uuid(), now() - g * interval '7 s', "
        "'worker', 'w' || g % 3, 'ERROR', 17, 'boom ' || g % 2 FROM generate_series(1, 1000) g"
    )
    with conn.cursor().copy(
        'COPY system_logs (id, "timestamp", source_type, source_id, log_level, severity_number, '
        "message) FROM STDIN"
    ) as copy:
        for i in range(100):
            copy.write_row(
                (
                    uuid.uuid4(),
                    datetime.now(UTC) - timedelta(seconds=i),
                    "worker",
                    "w",
                    "INFO",
                    9,
                    "",
                )
            )
    assert counted(conn) == stored(conn) == 1100
    assert_rollups_match_raw(conn)


def test_concurrent_writers_count_exactly_without_deadlock(db_url):
    """Eight threads insert overlapping keys (same minutes, levels, sources, workers) in
    different orders at the same time: no deadlock, and not one count lost or doubled."""
    start = datetime.now(UTC) - timedelta(minutes=3)
    errors: list[BaseException] = []

    def write(seed: int) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as own:
                for batch in range(6):
                    insert(own, mixed_entries(150, start, timedelta(minutes=2), seed * 100 + batch))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert counted(conn) == stored(conn) == 8 * 6 * 150
        assert_rollups_match_raw(conn)


def _raw_statistics(conn, since: datetime, until: datetime) -> dict[str, Any]:
    """The statistics computed in Python from the raw rows of [since, until)."""
    rows = conn.execute(
        'SELECT log_level, source_type, source_id, worker_id, severity_number, "timestamp" '
        'FROM system_logs WHERE "timestamp" >= %s AND "timestamp" < %s',
        [since, until],
    ).fetchall()
    by_source: dict[tuple[str, str], list[Any]] = {}
    by_worker: dict[str, list[Any]] = {}
    for _level, source_type, source_id, worker, severity, at in rows:
        groups = [by_source.setdefault((source_type, source_id), [0, 0, at])]
        if worker is not None:
            groups.append(by_worker.setdefault(worker, [0, 0, at]))
        for group in groups:
            group[0] += 1
            group[1] += severity >= 17
            group[2] = max(group[2], at)
    return {
        "total": len(rows),
        "errors": sum(r[4] >= 17 for r in rows),
        "by_level": dict(Counter(r[0] for r in rows)),
        "by_source": sorted(
            [
                {"source_type": t, "source_id": i, "count": n, "errors": e, "last_seen": last}
                for (t, i), (n, e, last) in by_source.items()
            ],
            key=lambda s: (-s["count"], s["source_type"], s["source_id"]),
        ),
        "by_worker": sorted(
            [
                {"worker_id": w, "count": n, "errors": e, "last_seen": last}
                for w, (n, e, last) in by_worker.items()
            ],
            key=lambda w: (-w["count"], w["worker_id"]),
        ),
    }


def _statistics(conn, since: datetime, until: datetime) -> dict[str, Any]:
    stats = PsycopgExecutor(conn).run(calls.log_statistics(since, until))
    for group in (*stats.by_source, *stats.by_worker):
        group["last_seen"] = datetime.fromisoformat(group["last_seen"])
    return {
        "total": stats.total,
        "errors": stats.errors,
        "by_level": stats.by_level,
        "by_source": stats.by_source,
        "by_worker": stats.by_worker,
    }


def test_statistics_are_exact_for_windows_with_partial_minutes_and_hours(conn):
    """Windows cut inside minutes and hours at both ends, shorter than a minute, aligned
    on hours, spanning days or empty: the rollup-backed answer equals the raw count."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    insert(conn, mixed_entries(3000, hour - timedelta(minutes=30), timedelta(hours=4), 7))
    second = timedelta(seconds=1)
    windows = [
        (hour + 17.3 * second, hour + timedelta(hours=2, minutes=41, seconds=5.2)),
        (hour - timedelta(minutes=29, seconds=31), hour + timedelta(hours=3, seconds=1)),
        (hour, hour + timedelta(hours=2)),
        (hour + timedelta(minutes=5), hour + timedelta(minutes=55)),
        (hour + timedelta(minutes=5, seconds=3), hour + timedelta(minutes=5, seconds=40)),
        (hour + timedelta(minutes=59, seconds=30), hour + timedelta(hours=1, seconds=30)),
        (hour - timedelta(days=2), hour + timedelta(days=1)),
        (hour + timedelta(hours=1), hour + timedelta(hours=1)),
        (hour + timedelta(hours=2), hour + timedelta(hours=1)),
    ]
    for since, until in windows:
        assert _statistics(conn, since, until) == _raw_statistics(conn, since, until), (
            since,
            until,
        )


def _day(days_ago: int, hour: int = 12) -> datetime:
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_moving_rows_out_of_the_default_partition_does_not_count_them_again(conn):
    """func_maintain_log_partitions moves stragglers with INSERT into a table not yet
    attached: the parent's trigger does not fire, the counts stay those of the rows."""
    insert(conn, mixed_entries(200, _day(3), timedelta(hours=3), 3))
    assert conn.execute("SELECT count(*) FROM system_logs_default").fetchone() == (200,)
    moved = PsycopgExecutor(conn).run(calls.maintain_log_partitions(days_ahead=3, days_behind=4))
    assert moved.moved_from_default == 200
    assert counted(conn) == stored(conn) == 200
    assert_rollups_match_raw(conn)


def test_retention_forgets_the_counts_of_dropped_days_and_deleted_stragglers(conn):
    """Dropped partitions take their days' counts; rows deleted from the default
    partition are uncounted, including in the hour that straddles the cut-off."""
    PsycopgExecutor(conn).run(calls.maintain_log_partitions(days_ahead=3, days_behind=4))
    conn.execute(f"DROP TABLE system_logs_p{_day(2):%Y%m%d}")  # the cut-off's day: default
    insert(conn, mixed_entries(100, _day(4), timedelta(hours=20), 1))  # partition, dropped
    insert(conn, mixed_entries(100, _day(3), timedelta(hours=20), 2))  # partition, dropped
    cutoff = datetime.now(UTC) - timedelta(hours=48)
    insert(conn, mixed_entries(100, cutoff - timedelta(minutes=40), timedelta(minutes=80), 3))
    insert(conn, mixed_entries(100, _day(6), timedelta(hours=1), 4))  # default, deleted
    insert(conn, mixed_entries(100, datetime.now(UTC) - timedelta(hours=1), timedelta(hours=1), 5))
    result = conn.execute("SELECT func_cleanup_old_logs(48)").fetchone()[0]
    assert len(result["dropped_partitions"]) == 2
    assert result["deleted_from_default"] >= 100  # the 6-day-old rows, maybe a few more
    assert counted(conn) == stored(conn) < 200
    assert_rollups_match_raw(conn)
    oldest = conn.execute("SELECT min(bucket) FROM system_log_counts").fetchone()[0]
    assert oldest >= cutoff.replace(minute=0, second=0, microsecond=0)


def test_the_function_file_backfills_an_empty_rollup_once(conn):
    """Logs stored while the rollups were empty (a database upgraded from before them)
    are counted when the file is applied; applying it again while the rollup has rows
    counts nothing twice."""
    insert(conn, mixed_entries(500, datetime.now(UTC) - timedelta(hours=3), timedelta(hours=3), 9))
    conn.execute("TRUNCATE system_log_counts, system_log_error_counts")  # as before 0007
    conn.execute(ROLLUPS.read_text())
    assert counted(conn) == stored(conn) == 500
    assert_rollups_match_raw(conn)
    conn.execute(ROLLUPS.read_text())
    assert counted(conn) == 500


def test_rebuild_repairs_a_hand_made_change_and_refuses_a_bad_window(conn):
    """After a DELETE by hand (which the rollups do not follow) the rebuild of that
    window restores exact counts; since after until is refused with a clear message."""
    start = datetime.now(UTC) - timedelta(hours=3)
    insert(conn, mixed_entries(400, start, timedelta(hours=3), 11))
    conn.execute("DELETE FROM system_logs WHERE log_level = 'ERROR'")
    conn.execute("SELECT hub_internal.func_log_rollups_rebuild(%s, %s)", [start, datetime.now(UTC)])
    assert counted(conn) == stored(conn)
    assert_rollups_match_raw(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="since <= until"):
        conn.execute(
            "SELECT hub_internal.func_log_rollups_rebuild(now(), now() - interval '1 hour')"
        )


def _summary(conn, since, until, **filters: Any) -> dict[str, Any]:
    row = conn.execute(
        "SELECT func_log_errors_summary(%s, %s, %s, %s, %s)",
        [since, until, filters.get("source_type"), filters.get("worker_id"), filters.get("top", 5)],
    ).fetchone()
    result: dict[str, Any] = row[0]
    result["since"] = datetime.fromisoformat(result["since"])
    result["until"] = datetime.fromisoformat(result["until"])
    for message in result["top_messages"]:
        message["first_seen"] = datetime.fromisoformat(message["first_seen"])
        message["last_seen"] = datetime.fromisoformat(message["last_seen"])
    return result


def _raw_summary(conn, since, until, **filters: Any) -> dict[str, Any]:
    """func_log_errors_summary's answer computed in Python from the raw error rows."""
    top = filters.get("top", 5)
    rows = [
        r
        for r in conn.execute(
            'SELECT log_level, source_type, source_id, worker_id, message, "timestamp", exception '
            'FROM system_logs WHERE "timestamp" >= %s AND "timestamp" < %s '
            'AND severity_number >= 17 ORDER BY "timestamp", id',
            [since, until],
        ).fetchall()
        if filters.get("source_type") in (None, r[1]) and filters.get("worker_id") in (None, r[3])
    ]
    by_source = Counter((r[1], r[2]) for r in rows)
    by_worker = Counter(r[3] for r in rows if r[3] is not None)
    messages: dict[tuple[str, str, str], list[Any]] = {}
    for level, source_type, _, _, message, at, exception in rows:
        group = messages.setdefault((message, level, source_type), [0, at, at, None])
        group[0] += 1
        group[2] = at
        lines = [line.strip() for line in (exception or "").splitlines() if line.strip()]
        if lines:  # the cause: the last line of the most recent exception
            group[3] = lines[-1]
    ranked = sorted(messages.items(), key=lambda kv: (-kv[1][0], -kv[1][2].timestamp(), kv[0][0]))
    return {
        "since": since,
        "until": until,
        "total": len(rows),
        "by_level": dict(Counter(r[0] for r in rows)),
        "by_source": [
            {"source_type": t, "source_id": i, "count": n}
            for (t, i), n in sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        ],
        "by_worker": [
            {"worker_id": w, "count": n}
            for w, n in sorted(by_worker.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        ],
        "top_messages": [
            {
                "message": m,
                "cause": cause,
                "count": n,
                "first_seen": first,
                "last_seen": last,
                "log_level": level,
                "source_type": source_type,
            }
            for (m, level, source_type), (n, first, last, cause) in ranked[:top]
        ],
        "distinct_sources": len(by_source),
        "distinct_workers": len(by_worker),
        "distinct_messages": len(messages),
    }


def test_errors_summary_from_the_rollups_equals_the_raw_rows(conn):
    """Windows cut inside hours at both ends, hour-aligned or under an hour, with and
    without a source_type or worker filter, lists cut by top: the same answer as the
    raw error rows give, the cause of each message (the last line of its most recent
    exception) included."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    rng = random.Random(5)
    batch = [
        entry(
            timestamp=(hour - timedelta(minutes=20) + timedelta(hours=4.5) * rng.random()).isoformat(),
            log_level=rng.choice(["ERROR", "ERROR", "CRITICAL", "INFO"]),
            source_type=source_type,
            source_id=source_id,
            worker_id=worker,
            message=f"failure {rng.randrange(9) if worker else 'of the scheduler'}",
            exception=rng.choice([None, f"Traceback\n  File 'x'\nValueError: {rng.randrange(99)}\n "]),
        )
        for source_type, source_id, worker in [
            rng.choice([("worker", "gpu-1", "gpu-1"), ("worker", "gpu-2", "gpu-2"),
                        ("worker", "gpu-3", "gpu-3"), ("orchestrator_gpu", "orch-1", None)])
            for _ in range(1200)
        ]
    ]  # fmt: skip
    insert(conn, batch)
    windows = [
        (hour + timedelta(minutes=13, seconds=7.25), hour + timedelta(hours=3, minutes=41)),
        (hour, hour + timedelta(hours=2)),
        (hour + timedelta(minutes=10), hour + timedelta(minutes=50)),
        (hour - timedelta(days=1), hour + timedelta(days=1)),
    ]
    for since, until in windows:
        for filters in ({}, {"source_type": "worker"}, {"worker_id": "gpu-2"}, {"top": 50}):
            assert _summary(conn, since, until, **filters) == _raw_summary(
                conn, since, until, **filters
            ), (since, until, filters)


def test_errors_summary_groups_messages_by_their_first_200_characters(conn):
    """Messages equal in their first 200 characters are one group (a long tail such as
    an appended id does not split it); the group shows the first message in full."""
    now = datetime.now(UTC)
    prefix = "connection to the model store failed: " + "x" * 170
    insert(conn, [
        entry(timestamp=(now - timedelta(hours=3)).isoformat(), log_level="ERROR",
              message=prefix + " request 1"),
        entry(timestamp=(now - timedelta(hours=2)).isoformat(), log_level="ERROR",
              message=prefix + " request 2"),
        entry(timestamp=(now - timedelta(minutes=5)).isoformat(), log_level="ERROR",
              message=prefix + " request 3"),
    ])  # fmt: skip
    summary = _summary(conn, now - timedelta(hours=4), now)
    assert summary["distinct_messages"] == 1
    [group] = summary["top_messages"]
    assert (group["message"], group["count"]) == (prefix + " request 1", 3)


def test_the_cause_of_a_message_is_its_most_recent_exception_across_batches(conn):
    """Batch after batch (as handlers ship), the group's cause follows the newest
    exception; a late batch of older rows does not replace it; a blank exception is no
    cause; hours rolled up before the cause existed are filled by a rebuild."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)

    def failed(minute: float, exception: str | None) -> dict[str, Any]:
        return entry(timestamp=(hour + timedelta(minutes=minute)).isoformat(),
                     log_level="ERROR", message="Task failed", exception=exception)  # fmt: skip

    def cause() -> str | None:
        # a window of whole hours: read from the rollup the trigger keeps
        [group] = _summary(conn, hour - timedelta(hours=1), hour + timedelta(hours=1))[
            "top_messages"
        ]
        return group["cause"]

    insert(conn, [failed(10, "Traceback\nValueError: first\n")])
    assert cause() == "ValueError: first"
    insert(conn, [failed(30, "Traceback\nMemoryError: newest\n"), failed(20, None)])
    assert cause() == "MemoryError: newest"
    insert(conn, [failed(15, "Traceback\nKeyError: late\n"), failed(40, "  \n\t")])
    assert cause() == "MemoryError: newest"
    conn.execute("UPDATE system_log_error_counts SET cause = NULL")  # as before 0060
    conn.execute("SELECT hub_internal.func_log_rollups_rebuild(%s, %s)",
                 [hour, hour + timedelta(hours=1)])  # fmt: skip
    assert cause() == "MemoryError: newest"


@pytest.mark.parametrize(
    ("exception", "cause"),
    [
        (
            "Traceback (most recent call last):\n  File x\nValueError: bad  \n\n \t\n",
            "ValueError: bad",
        ),
        ("one line", "one line"),
        ("a\r\n  MemoryError: CUDA out of memory\r\n", "MemoryError: CUDA out of memory"),
        ("", None),
        (" \n\t\n\f\n", None),
        ("x\n" + "y" * 600, "y" * 500),
        ("\n" * 100_000 + "deep", "deep"),
    ],
)
def test_the_cause_of_an_error_is_the_last_non_blank_line_of_its_exception(conn, exception, cause):
    """func_log_exception_cause: the summary's "cause" column, trimmed and bounded, in
    time linear in the text (a text of 100,000 lines is read like a short one)."""
    got = conn.execute("SELECT hub_internal.func_log_exception_cause(%s)", [exception]).fetchone()[
        0
    ]
    assert got == cause
