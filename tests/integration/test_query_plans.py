"""EXPLAIN regression tests: the statements the readers really run prune partitions to
their time window and are served by the index of their filter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from bench.explain import explain, statement
from orchestrator.logs import calls as db_calls
from orchestrator.query import LogFilter, calls
from tests.integration.logrows import entry, insert

NOW = datetime.now(UTC)
TASK = str(uuid.uuid4())


@pytest.fixture
def filled(conn):
    """Three days of rows in their daily partitions, analysed; seq scans discouraged so
    that the tiny tables still show which index serves each filter."""
    conn.execute("SELECT func_maintain_log_partitions(days_ahead => 2, days_behind => 4)")
    rows = []
    for i in range(600):
        level = ("INFO", "ERROR", "DEBUG", "CRITICAL", "WARNING")[i % 5]
        rows.append(entry(
            timestamp=(NOW - timedelta(minutes=7 * i)).isoformat(), log_level=level,
            worker_id=f"gpu-{i % 7}", task_id=TASK if i % 50 == 0 else None,
            message=f"step {i} checkpoint" if i % 3 else f"rare word {i}",
        ))  # fmt: skip
    insert(conn, rows)
    conn.execute("ANALYZE system_logs")
    conn.execute("SET enable_seqscan = off")
    return conn


def days_overlapping(since: datetime, until: datetime) -> set[str]:
    day, names = since.date(), set()
    while day <= until.date():
        names.add(f"system_logs_p{day:%Y%m%d}")
        day += timedelta(days=1)
    return names


def test_a_time_window_scans_only_its_partitions(filled):
    """[since, until) reaches only the day partitions it overlaps (not the default)."""
    since, until = NOW - timedelta(hours=1), NOW + timedelta(minutes=1)
    plan = explain(filled, calls.query_logs(LogFilter(since=since, until=until, worker_id="gpu-1")))
    assert set(plan.partitions) == days_overlapping(since, until)
    assert plan.partitions_total >= 7


@pytest.mark.parametrize(
    ("call", "index"),
    [
        (calls.task_timeline(TASK), "task_id_timestamp"),
        (calls.worker_timeline("gpu-3", NOW - timedelta(days=1), NOW), "worker_id_timestamp"),
        (calls.query_logs(LogFilter(since=NOW - timedelta(days=1), until=NOW,
                                    levels=("ERROR", "CRITICAL"))), "_timestamp_idx"),
        (calls.query_logs(LogFilter(since=NOW - timedelta(days=1), until=NOW,
                                    min_level="error")), "_timestamp_idx"),
        (calls.errors_summary(NOW - timedelta(days=1), NOW), "_timestamp_idx"),
    ],
)  # fmt: skip
def test_each_filter_is_served_by_its_index(filled, call, index):
    """Task, worker and errors reads use their (partial) index on every day they scan.
    (Indexes of other tables, such as rollups a later migration reads, are not judged.)"""
    plan = explain(filled, call)
    on_logs = [i for i in plan.data_indexes if i.startswith("system_logs_")]
    assert on_logs and all(index in i for i in on_logs), plan.data_indexes
    assert not [s for s in plan.seq_scans if s not in plan.empty and s.startswith("system_logs")]


def test_errors_filters_prove_the_partial_index(filled):
    """levels ERROR/CRITICAL reach the errors index `WHERE severity_number >= 17`: the
    level names became constants while planning."""
    plan = explain(filled, calls.query_logs(LogFilter(levels=("error", "critical"))))
    errors_index = [
        i for i in plan.data_indexes if i.endswith("_timestamp_idx") and "_id_" not in i
    ]
    assert errors_index, plan.indexes


def test_search_uses_the_trigram_index_where_pg_trgm_exists(filled):
    """With pg_trgm (0002 builds the index), a literal search is an index lookup."""
    if filled.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() is None:
        pytest.skip("pg_trgm is not installed on this server (the embedded one has none)")
    filled.execute("SET enable_indexscan = off")  # tiny tables: a walk of the pkey is cheaper
    plan = explain(filled, calls.query_logs(LogFilter(search="rare word")))
    assert plan.data_indexes and all("message" in i for i in plan.data_indexes), plan.indexes


def test_statistics_body_is_explained_from_the_database(filled):
    """func_log_statistics (SQL-language) is explained from its own body; where that body
    reads system_logs itself (0003's does), only the window's partitions are scanned."""
    call = db_calls.log_statistics(NOW - timedelta(hours=1), NOW)
    text, types, _ = statement(filled, call)
    assert "GROUPING SETS" in text and "$1" in text and types == ["timestamp with time zone"] * 2
    plan = explain(filled, call)
    if "public.system_logs" in text:
        assert set(plan.partitions) == days_overlapping(NOW - timedelta(hours=1), NOW)
