"""Daily partitions, the default partition's stragglers, and retention by whole days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.logs import calls
from tests.integration.logrows import entry, insert, rows


def _partitions(conn) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'system_logs'::regclass ORDER BY 1"
        ).fetchall()
    ]


def _noon(days_ago: int) -> datetime:
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def test_migration_creates_yesterday_today_and_three_days_ahead(conn):
    """Partitions exist before the rows that need them arrive."""
    today = datetime.now(UTC).date()
    expected = {f"system_logs_p{today + timedelta(days=d):%Y%m%d}" for d in range(-1, 4)}
    assert expected <= set(_partitions(conn))
    assert "system_logs_default" in _partitions(conn)


def test_maintenance_is_idempotent_and_moves_stragglers_out_of_default(conn):
    """Rows that landed in the default partition move into the day created for them."""
    executor = PsycopgExecutor(conn)
    insert(conn, [entry(timestamp=_noon(6).isoformat(), message="old")])
    assert conn.execute("SELECT tableoid::regclass::text FROM system_logs").fetchone() == (
        "system_logs_default",
    )
    result = executor.run(calls.maintain_log_partitions(days_ahead=3, days_behind=7))
    assert f"system_logs_p{_noon(6):%Y%m%d}" in result.created
    assert result.moved_from_default == 1
    assert conn.execute("SELECT tableoid::regclass::text FROM system_logs").fetchone() == (
        f"system_logs_p{_noon(6):%Y%m%d}",
    )
    again = executor.run(calls.maintain_log_partitions(days_ahead=3, days_behind=7))
    assert again.created == () and again.moved_from_default == 0


def test_new_partitions_get_rls_and_no_public_grants(conn):
    """Partitions made by maintenance follow the same privilege rules as the parent."""
    PsycopgExecutor(conn).run(calls.maintain_log_partitions(days_ahead=10))
    unsafe = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'system_logs'::regclass "
        "AND (NOT c.relrowsecurity OR has_table_privilege('public', c.oid, 'SELECT'))"
    ).fetchall()
    assert unsafe == []


def test_bad_maintenance_arguments_are_refused(conn):
    """Out-of-range day counts get a clear error naming the argument."""
    with pytest.raises(
        psycopg.errors.InvalidParameterValue, match="days_ahead must be between 0 and 366"
    ):
        conn.execute("SELECT func_maintain_log_partitions(-1)")


def test_retention_drops_whole_days_across_partition_boundaries(conn):
    """Days that ended before the cut-off go; the day holding the cut-off stays whole."""
    executor = PsycopgExecutor(conn)
    executor.run(calls.maintain_log_partitions(days_ahead=3, days_behind=6))
    now = datetime.now(UTC)
    stamps = [_noon(d) for d in (5, 4, 3, 2, 1)] + [
        now - timedelta(hours=49),
        now - timedelta(minutes=5),
    ]
    stamps.append(now - timedelta(days=20))  # no partition: lands in default
    insert(conn, [entry(timestamp=t.isoformat(), message=t.isoformat()) for t in stamps])
    conn.execute("ANALYZE system_logs")
    cutoff = now - timedelta(hours=48)

    def day_end(t: datetime) -> datetime:
        return datetime(t.year, t.month, t.day, tzinfo=UTC) + timedelta(days=1)

    partitioned = stamps[:-1]
    expected_kept = sorted(t for t in partitioned if day_end(t) > cutoff)
    expected_dropped = sorted(
        name
        for name in _partitions(conn)
        if name != "system_logs_default"
        and datetime.strptime(name[-8:], "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1) <= cutoff
    )
    assert len(expected_dropped) >= 3

    result = executor.run(calls.cleanup_old_logs(48))
    assert sorted(result.dropped_partitions) == expected_dropped
    assert result.retention_hours == 48
    assert result.deleted == len(stamps) - len(expected_kept)
    assert [r["timestamp"] for r in rows(conn)] == expected_kept
    assert not set(expected_dropped) & set(_partitions(conn))


def test_retention_deletes_only_expired_rows_of_the_default_partition(conn):
    """Stragglers in the default partition are removed row by row at the exact cut-off."""
    now = datetime.now(UTC)
    insert(
        conn,
        [
            entry(timestamp=(now - timedelta(days=20)).isoformat(), message="expired"),
            entry(timestamp=(now - timedelta(days=9)).isoformat(), message="kept"),
        ],
    )
    assert conn.execute("SELECT count(*) FROM system_logs_default").fetchone() == (2,)
    result = PsycopgExecutor(conn).run(calls.cleanup_old_logs(24 * 10))
    assert result.deleted == 1
    assert [r["message"] for r in rows(conn)] == ["kept"]


@pytest.mark.parametrize("hours", [0, -5, None])
def test_retention_below_one_hour_is_refused(conn, hours):
    """func_cleanup_old_logs(0) must never empty the table: it is an error."""
    with pytest.raises(
        psycopg.errors.InvalidParameterValue, match="retention_hours must be at least 1"
    ):
        conn.execute("SELECT func_cleanup_old_logs(%s::int)", [hours])
    assert (
        conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'system_logs'::regclass"
        ).fetchone()[0]
        > 1
    )
