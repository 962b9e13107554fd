"""The log store beside its writers: retention and the rollup rebuild must not stall
ingest (issue 14, item 11), and the reads need no primary (README "Capacity and
scale-out").

Each test keeps the maintenance step's transaction in a state that used to hold writers
(a partition held by a long reader; a rebuild not yet committed) and sends a batch of
current logs from a connection whose ``statement_timeout`` is the bound: a writer held
up longer fails its statement, so the test fails."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.logs import calls
from tests.integration.logrows import entry, insert

BOUND = "2s"  # writers may wait this long at most; retention used to hold them 5 s


def _writer(db_url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(db_url, autocommit=True)
    conn.execute(f"SET statement_timeout = '{BOUND}'")
    return conn


def _noon(days_ago: int) -> datetime:
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def test_writers_are_not_held_while_retention_waits_for_a_busy_partition(db_url, conn):
    """A long reader holds an old partition: retention gives up on it after 100 ms, and
    a writer of current logs meanwhile waits less than the bound."""
    PsycopgExecutor(conn).run(calls.maintain_log_partitions(days_ahead=1, days_behind=6))
    insert(conn, [entry(timestamp=_noon(5).isoformat(), message="old")])
    old = f"system_logs_p{_noon(5):%Y%m%d}"
    with psycopg.connect(db_url) as reader, _writer(db_url) as writer:
        reader.execute(f"SELECT count(*) FROM {old}")  # ACCESS SHARE until rollback
        results: list[Any] = []
        retention = threading.Thread(
            target=lambda: results.append(
                PsycopgExecutor(psycopg.connect(db_url, autocommit=True)).run(
                    calls.cleanup_old_logs(retention_hours=48)
                )
            )
        )
        retention.start()
        for n in range(5):  # while retention runs and after
            assert insert(writer, [entry(message=f"now {n}")]).inserted == 1
        retention.join(30)
        reader.rollback()
    assert old in results[0].skipped_partitions


def test_writers_of_the_current_hour_are_not_held_by_a_rebuild_of_past_hours(db_url, conn):
    """A rebuild of yesterday, not yet committed, locks yesterday's hours only."""
    insert(conn, [entry(timestamp=_noon(1).isoformat(), message="yesterday")])
    with psycopg.connect(db_url) as rebuild, _writer(db_url) as writer:
        rebuild.execute(
            "SELECT hub_internal.func_log_rollups_rebuild(%s, %s)",
            [_noon(1) - timedelta(hours=12), _noon(1) + timedelta(hours=11)],
        )
        assert insert(writer, [entry(message="current hour")]).inserted == 1
        rebuild.commit()
    (count,) = conn.execute(
        "SELECT sum(count) FROM system_log_counts WHERE resolution = 'hour'"
    ).fetchone()
    assert count == 2  # both counted exactly once


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT func_query_logs()",
        "SELECT func_worker_timeline('gpu-1', now() - interval '1 day', now())",
        "SELECT func_task_timeline('0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a')",
        "SELECT func_log_statistics(now() - interval '1 day', now())",
        "SELECT func_log_errors_summary(now() - interval '1 day', now())",
        "SELECT func_log_dashboard_summary()",
        "SELECT func_queue_depth()",
    ],
)
def test_the_read_functions_run_in_a_read_only_transaction(conn, statement):
    """What a streaming replica requires of them (README "Capacity and scale-out")."""
    insert(conn, [entry(message="one row", log_level="ERROR", worker_id="gpu-1")])
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        assert conn.execute(statement).fetchone() is not None
