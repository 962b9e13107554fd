"""``--errors-summary`` and ``--stats`` JSON carry the seed's keys beside the hub's, so
scripts built on the seed's ``scripts/query_logs.py`` output keep working: over SQL and
over Supabase REST (the PostgREST stand-in), counted by the database."""

from __future__ import annotations

import io
import json
import uuid

import psycopg
import pytest

from orchestrator.cli.logs_cmd import build_request, execute
from orchestrator.cli.main import build_parser
from orchestrator.db.supabase import SupabaseExecutor
from tests.integration.logrows import entry, insert
from tests.integration.test_logs_cli import KEY, at, logs
from tests.support.fake_postgrest import FakePostgrest

TASK_A, TASK_B = str(uuid.uuid4()), str(uuid.uuid4())


def _seed_rows(conn) -> None:
    insert(
        conn,
        [
            entry(timestamp=at(1), log_level="ERROR", task_id=TASK_A, worker_id="gpu-1"),
            entry(timestamp=at(2), log_level="CRITICAL", task_id=TASK_A, worker_id="gpu-1"),
            entry(timestamp=at(3), log_level="ERROR", task_id=TASK_B, worker_id="gpu-2"),
            entry(timestamp=at(4), log_level="ERROR", worker_id="gpu-2"),  # no task
            entry(timestamp=at(5), log_level="INFO", task_id=TASK_B, worker_id="gpu-2"),
            entry(timestamp=at(6), source_type="orchestrator_gpu", source_id="orch-1"),
            entry(timestamp=at(60 * 30), log_level="ERROR", task_id=TASK_B),  # 30 h ago
        ],
    )


def test_errors_summary_json_has_total_errors_and_by_task(db_url, conn):
    """total_errors = total (ERROR and CRITICAL); by_task counts each task's errors of the
    window; distinct_tasks says how many tasks there were when --limit cuts the list."""
    _seed_rows(conn)
    status, out, _ = logs(db_url, "--errors-summary", "--format", "json")
    summary = json.loads(out)
    assert status == 0
    assert summary["total"] == summary["total_errors"] == 4
    assert summary["by_task"] == {TASK_A: 2, TASK_B: 1}
    assert summary["distinct_tasks"] == 2
    assert isinstance(summary["by_worker"], list)  # the hub's shape stays
    _, out, _ = logs(db_url, "--errors-summary", "--format", "json", "--limit", "1")
    cut = json.loads(out)
    assert (cut["by_task"], cut["distinct_tasks"]) == ({TASK_A: 2}, 2)
    _, out, _ = logs(db_url, "--errors-summary", "--format", "json", "--worker", "gpu-2")
    assert json.loads(out)["by_task"] == {TASK_B: 1}


def test_stats_json_has_total_logs_total_errors_and_by_source_type(db_url, conn):
    """The stats' seed keys are sums of the database's exact counts."""
    _seed_rows(conn)
    _, out, _ = logs(db_url, "--stats", "--format", "json")
    stats = json.loads(out)
    assert (stats["total_logs"], stats["total_errors"]) == (stats["total"], stats["errors"])
    assert (stats["total_logs"], stats["total_errors"]) == (6, 4)
    assert stats["by_source_type"] == {"worker": 5, "orchestrator_gpu": 1}


def test_summary_tables_stay_as_they_were(db_url, conn):
    """The seed's keys are for JSON readers; the tables do not grow them."""
    _seed_rows(conn)
    _, out, _ = logs(db_url, "--errors-summary")
    assert "Errors from" in out and "total_errors" not in out and TASK_A not in out


def test_the_seed_keys_over_supabase_rest(db_url, conn):
    """Through Supabase REST the same keys arrive, each counted by one RPC."""
    _seed_rows(conn)
    request = build_request(
        build_parser().parse_args(["logs", "--errors-summary", "--format", "json"])
    )
    with FakePostgrest(db_url, KEY, max_rows=1000) as fake, SupabaseExecutor(fake.url, KEY) as rest:
        out = io.StringIO()
        assert execute(rest, request, out, io.StringIO()) == 0
        paths = [r.path for r in fake.requests]
    summary = json.loads(out.getvalue())
    assert summary["by_task"] == {TASK_A: 2, TASK_B: 1} and summary["total_errors"] == 4
    assert paths == ["/rest/v1/rpc/func_log_errors_summary", "/rest/v1/rpc/func_log_errors_by_task"]


def test_errors_by_task_refuses_bad_input_in_one_line(conn):
    """A window without a start or a top out of range is refused, naming what is accepted."""
    for statement, says in [
        ("SELECT func_log_errors_by_task(NULL)", "since is required"),
        ("SELECT func_log_errors_by_task(now(), top => 0)", "top must be between 1 and 1000"),
    ]:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=says):
            conn.execute(statement)
