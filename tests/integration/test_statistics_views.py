"""func_log_statistics and the SQL-editor views aggregate in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.logs import calls
from tests.integration.logrows import entry, insert


def _seed(conn) -> datetime:
    now = datetime.now(UTC)
    recent = (now - timedelta(minutes=10)).isoformat()
    old = (now - timedelta(hours=30)).isoformat()
    insert(
        conn,
        [
            entry(
                timestamp=recent, source_type="orchestrator_gpu", source_id="orch-1", cycle_number=1
            ),
            entry(timestamp=recent, worker_id="gpu-1", source_id="gpu-1"),
            entry(
                timestamp=recent,
                worker_id="gpu-1",
                source_id="gpu-1",
                log_level="ERROR",
                message="oom",
            ),
            entry(timestamp=recent, worker_id="gpu-2", source_id="gpu-2", log_level="WARNING"),
            entry(
                timestamp=recent,
                worker_id="gpu-2",
                source_id="gpu-2",
                log_level="CRITICAL",
                message="dead",
            ),
            entry(
                timestamp=old,
                worker_id="gpu-1",
                source_id="gpu-1",
                log_level="ERROR",
                message="old",
            ),
        ],
    )
    return now


def test_statistics_count_by_level_source_and_worker_in_the_window(conn):
    """Counts cover exactly [since, until) and include error counts per group."""
    now = _seed(conn)
    stats = PsycopgExecutor(conn).run(calls.log_statistics(now - timedelta(hours=1), now))
    assert stats.total == 5
    assert stats.errors == 2
    assert stats.by_level == {"INFO": 2, "ERROR": 1, "WARNING": 1, "CRITICAL": 1}
    sources = {
        (s["source_type"], s["source_id"]): (s["count"], s["errors"]) for s in stats.by_source
    }
    assert sources == {
        ("orchestrator_gpu", "orch-1"): (1, 0),
        ("worker", "gpu-1"): (2, 1),
        ("worker", "gpu-2"): (2, 1),
    }
    workers = {w["worker_id"]: (w["count"], w["errors"]) for w in stats.by_worker}
    assert workers == {"gpu-1": (2, 1), "gpu-2": (2, 1)}


def test_statistics_of_an_empty_window_are_zero(conn):
    """No rows means zeros and empty lists, not nulls."""
    now = datetime.now(UTC)
    stats = PsycopgExecutor(conn).run(calls.log_statistics(now - timedelta(hours=1), now))
    assert (stats.total, stats.errors, stats.by_level, stats.by_source, stats.by_worker) == (
        0,
        0,
        {},
        [],
        [],
    )


def test_statistics_default_window_is_the_last_24_hours(conn):
    """Called with no arguments (as in the SQL editor) it covers the last day."""
    _seed(conn)
    [stats] = conn.execute("SELECT func_log_statistics()").fetchone()
    assert stats["total"] == 5


def test_recent_error_logs_view_shows_errors_of_the_last_day_newest_first(conn):
    """v_recent_error_logs: ERROR and CRITICAL within 24 h only, one row each."""
    _seed(conn)
    messages = [m for (m,) in conn.execute("SELECT message FROM v_recent_error_logs").fetchall()]
    assert sorted(messages) == ["dead", "oom"]


def test_recent_errors_view_groups_by_source_and_worker_with_the_seeds_columns(conn):
    """v_recent_errors: the seed's grouped columns; the most frequent messages first,
    told apart by their first 200 characters, at most 20, with how many there were."""
    now = _seed(conn)
    recent = (now - timedelta(minutes=5)).isoformat()
    long = "x" * 200
    insert(
        conn,
        [
            entry(timestamp=recent, worker_id="gpu-1", log_level="ERROR", message="oom")
            for _ in range(2)
        ]
        + [entry(timestamp=recent, worker_id="gpu-1", log_level="ERROR", message=long + "a")]
        + [entry(timestamp=recent, worker_id="gpu-1", log_level="ERROR", message=long + "b")]
        + [
            entry(
                timestamp=recent,
                worker_id="gpu-3",
                source_id="gpu-3",
                message=f"e{i}",
                log_level="ERROR",
            )
            for i in range(25)
        ],
    )
    rows = conn.execute(
        "SELECT source_id, worker_id, error_count, last_error_time, unique_messages, "
        "distinct_messages FROM v_recent_errors ORDER BY source_id"
    ).fetchall()
    by_source = {r[0]: r[1:] for r in rows}
    assert set(by_source) == {"gpu-1", "gpu-2", "gpu-3"}
    worker, count, last, messages, distinct = by_source["gpu-1"]
    assert (worker, count, distinct) == ("gpu-1", 5, 2)
    assert messages == ["oom", long]
    assert last == datetime.fromisoformat(recent)
    assert by_source["gpu-2"][1:2] == (1,) and by_source["gpu-2"][3] == ["dead"]
    assert len(by_source["gpu-3"][3]) == 20 and by_source["gpu-3"][4] == 25


def test_worker_activity_view_covers_the_last_hour(conn):
    """v_worker_log_activity: per worker counts over one hour."""
    _seed(conn)
    activity = conn.execute(
        "SELECT worker_id, log_count, error_count, warning_count FROM v_worker_log_activity "
        "ORDER BY worker_id"
    ).fetchall()
    assert activity == [("gpu-1", 2, 1, 0), ("gpu-2", 2, 1, 1)]


def test_worker_activity_view_joins_the_workers_heartbeats(conn):
    """The seed's columns: status and last_heartbeat from workers, last_log_time from
    the logs; a worker that only beat this hour is there with zero logs, one silent for
    longer is not."""
    _seed(conn)
    executor = PsycopgExecutor(conn)
    for worker in ("gpu-1", "gpu-idle", "gpu-gone"):
        executor.run(calls.heartbeat_call(worker, "busy"))
    conn.execute(
        "UPDATE workers SET last_heartbeat_at = now() - interval '2 hours' "
        "WHERE worker_id = 'gpu-gone'"
    )
    rows = conn.execute(
        "SELECT worker_id, status, last_heartbeat IS NOT NULL, log_count, "
        "last_log_time = last_seen FROM v_worker_log_activity ORDER BY worker_id"
    ).fetchall()
    assert rows == [
        ("gpu-1", "busy", True, 2, True),
        ("gpu-2", None, False, 2, True),
        ("gpu-idle", "busy", True, 0, None),
    ]


def test_error_summary_groups_by_source_and_level(conn):
    """v_error_summary: one row per source, worker and level with the latest message."""
    _seed(conn)
    summary = conn.execute(
        "SELECT source_id, log_level, error_count, latest_message FROM v_error_summary "
        "ORDER BY source_id"
    ).fetchall()
    assert summary == [("gpu-1", "ERROR", 1, "oom"), ("gpu-2", "CRITICAL", 1, "dead")]


def test_every_hub_function_and_view_has_a_comment(conn):
    """COMMENT ON documents each part of the RPC contract where the SQL editor shows it."""
    missing = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'func\\_%' "
        "AND obj_description(p.oid, 'pg_proc') IS NULL "
        "UNION ALL SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relname LIKE 'v\\_%' AND c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL"
    ).fetchall()
    assert missing == []
