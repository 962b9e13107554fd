"""func_log_dashboard_summary (sql/functions/logs/dashboard.sql): the dashboard header's numbers, checked
against rows inserted at known distances from the database's clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from orchestrator.dashboard.calls import DashboardSummary, dashboard_summary
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.errors import InputRefused
from orchestrator.jobs import calls as jobs_calls
from tests.integration.logrows import entry, insert


def db_now(conn) -> datetime:
    return conn.execute("SELECT now()").fetchone()[0]


def summary(conn, **args) -> DashboardSummary:
    return PsycopgExecutor(conn).run(dashboard_summary(**args))


def at(base: datetime, **ago: float) -> str:
    return (base - timedelta(**ago)).isoformat()


def minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def test_empty_store_gives_zeros_and_sixty_empty_buckets(conn):
    """No rows: zero rates, no workers, 60 zero buckets, an empty queue."""
    result = summary(conn)
    assert result.logs_per_minute == 0
    assert result.error_rate == 0
    assert result.active_workers == 0
    assert result.errors_per_minute == (0,) * 60
    assert result.queue_depth == 0


def test_rates_workers_and_error_buckets_match_the_inserted_rows(conn):
    """Rates count the last 5 minutes only; each error lands in its own minute's bucket."""
    base = db_now(conn)
    recent = [
        entry(timestamp=at(base, minutes=1), worker_id="w-log", source_id="w-log"),
        entry(timestamp=at(base, minutes=2), worker_id="w-log", source_id="w-log"),
        entry(timestamp=at(base, minutes=3), source_type="orchestrator", source_id="o"),
        entry(timestamp=at(base, minutes=4), log_level="ERROR", worker_id="w-err"),
        entry(timestamp=at(base, minutes=4, seconds=30), log_level="CRITICAL"),
    ]
    errors_ago = [10, 10.2, 30, 58]  # minutes
    older = [entry(timestamp=at(base, minutes=m), log_level="ERROR") for m in errors_ago]
    older += [
        entry(timestamp=at(base, minutes=10), worker_id="w-stale"),  # too old to be active
        entry(timestamp=at(base, minutes=70), log_level="ERROR"),  # before the window
    ]
    assert insert(conn, recent + older).inserted == len(recent) + len(older)
    conn.execute(
        "SELECT func_worker_heartbeat_with_logs('w-beat'), func_worker_heartbeat_with_logs('w-log')"
    )
    conn.execute(
        "INSERT INTO workers (worker_id, status, last_heartbeat_at) "
        "VALUES ('w-gone', 'idle', now() - interval '6 minutes')"
    )

    result = summary(conn)

    assert result.logs_per_minute == pytest.approx(len(recent) / 5)
    assert result.error_rate == pytest.approx(2 / 5)
    assert result.active_workers == 3  # w-log, w-err (logs), w-beat (heartbeat)
    expected = [0] * 60
    for ts in [base - timedelta(minutes=m) for m in (4, 4.5, *errors_ago)]:
        expected[59 - int((minute(result.now) - minute(ts)).total_seconds() // 60)] += 1
    assert list(result.errors_per_minute) == expected
    assert sum(expected) == 6


def test_source_type_and_worker_filters_narrow_every_count(conn):
    """A filter narrows rates, workers and buckets; heartbeats count only for workers."""
    base = db_now(conn)
    insert(
        conn,
        [
            entry(timestamp=at(base, minutes=1), worker_id="a", source_id="a"),
            entry(timestamp=at(base, minutes=1), worker_id="a", log_level="ERROR"),
            entry(timestamp=at(base, minutes=1), worker_id="b", source_id="b"),
            entry(timestamp=at(base, minutes=2), source_type="orchestrator", source_id="o"),
        ],
    )
    conn.execute("SELECT func_worker_heartbeat_with_logs('c')")

    only_a = summary(conn, worker_id="a")
    assert only_a.logs_per_minute == pytest.approx(2 / 5)
    assert only_a.error_rate == pytest.approx(0.5)
    assert only_a.active_workers == 1
    assert sum(only_a.errors_per_minute) == 1

    workers = summary(conn, source_type="worker")
    assert workers.logs_per_minute == pytest.approx(3 / 5)
    assert workers.active_workers == 3  # a and b logged, c beat

    orchestrator = summary(conn, source_type="orchestrator")
    assert orchestrator.logs_per_minute == pytest.approx(1 / 5)
    assert orchestrator.active_workers == 0
    assert sum(orchestrator.errors_per_minute) == 0


def test_window_sets_the_number_of_buckets_and_is_checked(conn):
    """window_minutes buckets, oldest first; outside 1..1440 is refused with the range."""
    assert len(summary(conn, window_minutes=15).errors_per_minute) == 15
    with pytest.raises(InputRefused, match="between 1 and 1440") as refused:
        summary(conn, window_minutes=0)
    assert refused.value.sqlstate == "22023"  # invalid_parameter_value


def test_queue_depth_is_the_queued_count_of_func_queue_depth(conn):
    """The queued jobs, from func_queue_depth() (sql/functions/jobs/reads.sql); without that function null;
    an error in it leaves the depth null, says why, and the log numbers still arrive."""
    executor = PsycopgExecutor(conn)
    executor.run(jobs_calls.upsert_hub_user("user-1", "org-1"))
    for n in range(2):
        executor.run(jobs_calls.submit_job("user-1", "render", {"command": f"echo {n}"}))
    assert summary(conn).queue_depth == 2

    conn.execute("DROP FUNCTION public.func_queue_depth()")
    assert summary(conn).queue_depth is None

    conn.execute(
        "CREATE FUNCTION public.func_queue_depth() RETURNS integer "
        "LANGUAGE sql AS $$ SELECT 1 / 0 $$"
    )
    broken = summary(conn)
    assert broken.queue_depth is None
    assert broken.queue_error is not None and "division by zero" in broken.queue_error
    assert broken.errors_per_minute == (0,) * 60
