"""``orchestrator logs`` in-process on real PostgreSQL: flags, cut notices, --after,
exports, summaries, and --follow through an outage of the REST stand-in."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.cli.logs_cmd import build_request, execute
from orchestrator.cli.logs_follow import follow
from orchestrator.cli.logs_render import RowWriter
from orchestrator.cli.main import build_parser
from orchestrator.db.executor import PsycopgSession
from orchestrator.db.supabase import SupabaseExecutor
from orchestrator.errors import QueryInputError
from orchestrator.query import LogFilter
from tests.integration.logrows import entry, insert
from tests.support.fake_postgrest import FakePostgrest

KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
NOW = datetime.now(UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def logs(db_url: str, *argv: str) -> tuple[int, str, str]:
    """Runs `orchestrator logs ARGV` against db_url; returns (status, stdout, stderr)."""
    request = build_request(build_parser().parse_args(["logs", *argv]))
    out, err = io.StringIO(), io.StringIO()
    session = PsycopgSession(db_url, "the test database")
    try:
        status = execute(session, request, out, err)
    finally:
        session.close()
    return status, out.getvalue(), err.getvalue()


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_cut_result_says_so_and_after_continues_it(db_url, conn):
    """--limit cuts visibly; --after ID from the notice gives the rest, no overlap."""
    insert(conn, [entry(timestamp=at(i), message=f"m{i}") for i in range(25)])
    status, out, err = logs(db_url, "--limit", "10", "--format", "jsonl")
    first = [r["message"] for r in jsonl(out)]
    assert status == 0 and first == [f"m{i}" for i in range(10)]  # newest first
    assert "showing 10 rows; more match" in err
    after = err.rsplit("--after ", 1)[1].strip()
    assert after == jsonl(out)[-1]["id"]
    _, out2, err2 = logs(db_url, "--limit", "10", "--format", "jsonl", "--after", after)
    _, out3, err3 = logs(db_url, "--limit", "10", "--format", "jsonl",
                         "--after", err2.rsplit("--after ", 1)[1].strip())  # fmt: skip
    rest = [r["message"] for r in jsonl(out2) + jsonl(out3)]
    assert rest == [f"m{i}" for i in range(10, 25)]
    assert "more match" not in err3


def test_flags_become_filters(db_url, conn):
    """--level (repeat, commas), --min-level, --search, --worker, --cycle, --source-type."""
    task = str(uuid.uuid4())
    insert(conn, [
        entry(timestamp=at(5), log_level="ERROR", message="disk 100% full", worker_id="gpu-1"),
        entry(timestamp=at(4), log_level="WARNING", message="disk 90x full", worker_id="gpu-1"),
        entry(timestamp=at(3), log_level="CRITICAL", message="gone", source_type="orchestrator_gpu",
              source_id="orch-1", cycle_number=3),
        entry(timestamp=at(2), log_level="INFO", message="step", task_id=task),
        entry(timestamp=at(60 * 30), log_level="ERROR", message="too old"),
    ])  # fmt: skip

    def messages(*argv: str) -> list[str]:
        status, out, _ = logs(db_url, "--format", "jsonl", "--order", "oldest", *argv)
        assert status == 0
        return [r["message"] for r in jsonl(out)]

    assert messages("--level", "error", "--level", "critical") == ["disk 100% full", "gone"]
    assert messages("--level", "warn,CRITICAL") == ["disk 90x full", "gone"]
    assert messages("--min-level", "warning") == ["disk 100% full", "disk 90x full", "gone"]
    assert messages("--search", "100%") == ["disk 100% full"]
    assert messages("--worker", "gpu-1", "--level", "warning") == ["disk 90x full"]
    assert messages("--cycle", "3") == ["gone"]
    assert messages("--source-type", "orchestrator_gpu", "--source-id", "orch-1") == ["gone"]
    assert messages("--task", task) == ["step"]
    assert messages("--hours", "48", "--level", "ERROR") == ["too old", "disk 100% full"]
    window = ("--since", at(60 * 24), "--until", at(2.5))  # ISO times, so no clock drift
    assert messages(*window) == ["disk 100% full", "disk 90x full", "gone"]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "table"])
def test_export_streams_every_row(db_url, conn, tmp_path, fmt):
    """--export writes all 1,200 matching rows (pages of 1,000), oldest first."""
    insert(conn, [entry(timestamp=at(1200 - i), message=f"r{i}") for i in range(1200)])
    target = tmp_path / f"out.{fmt}"
    status, out, err = logs(db_url, "--hours", "48", "--export", str(target), "--format", fmt)
    assert status == 0 and out == ""
    text = target.read_text()
    if fmt == "jsonl":
        got = [r["message"] for r in jsonl(text)]
    elif fmt == "json":
        got = [r["message"] for r in json.loads(text)]
    else:  # a table cannot stream: the file gets CSV
        table = list(csv.DictReader(io.StringIO(text)))
        got = [r["message"] for r in table]
        assert set(table[0]) >= {"id", "timestamp", "metadata", "severity_number"}
    assert got == [f"r{i}" for i in range(1200)]
    assert f"exported 1200 rows to {target}" in err


def test_task_timeline_past_the_row_cap_and_older_than_a_day(db_url, conn):
    """--task-timeline shows the whole life; --limit cuts it visibly; export has all."""
    conn.execute("SELECT func_maintain_log_partitions(days_ahead => 1, days_behind => 3)")
    task = str(uuid.uuid4())
    insert(
        conn, [entry(timestamp=at(60 * 40 - i), task_id=task, message=f"s{i}") for i in range(1200)]
    )
    _, out, err = logs(db_url, "--task-timeline", task, "--format", "jsonl")
    rows = jsonl(out)
    assert len(rows) == 1000 and rows[0]["message"] == "s0"
    assert "showing 1000 rows; more match" in err
    _, out, err = logs(db_url, "--task-timeline", task, "--format", "jsonl", "--limit", "5000")
    assert [r["message"] for r in jsonl(out)] == [f"s{i}" for i in range(1200)]
    assert err == ""


def test_summaries_as_json_and_tables(db_url, conn):
    """--errors-summary and --stats print what the database counted."""
    insert(conn, [entry(timestamp=at(i), log_level="ERROR" if i % 2 else "INFO", message=f"e{i % 3}",
                        worker_id="gpu-1") for i in range(10)])  # fmt: skip
    _, out, _ = logs(db_url, "--errors-summary", "--format", "json")
    summary = json.loads(out)
    assert summary["total"] == 5 and summary["by_level"] == {"ERROR": 5}
    _, out, _ = logs(db_url, "--stats", "--format", "json")
    assert json.loads(out)["total"] == 10
    _, out, _ = logs(db_url, "--errors-summary", "--worker", "gpu-1")
    assert "Errors from" in out and "Top messages" in out and "\x1b[" not in out
    _, out, _ = logs(db_url, "--stats", "--color", "always")
    assert "By worker" in out


def test_color_only_when_asked_or_on_a_terminal(db_url, conn):
    """auto on a pipe: no escape codes; always: the level is coloured."""
    insert(conn, [entry(timestamp=at(1), log_level="ERROR", message="x")])
    assert "\x1b[" not in logs(db_url)[1]
    assert "\x1b[31mERROR" in logs(db_url, "--color", "always")[1]


def test_refusals_name_the_problem(db_url, conn):
    """Flags a mode would ignore, and unknown --after ids, are one-line errors."""
    with pytest.raises(QueryInputError, match="--task-timeline does not take --level"):
        logs(db_url, "--task-timeline", str(uuid.uuid4()), "--level", "error")
    with pytest.raises(QueryInputError, match="--follow works with the row listing only"):
        logs(db_url, "--stats", "-f")
    with pytest.raises(QueryInputError, match="use --format jsonl"):
        logs(db_url, "-f", "--format", "json")
    with pytest.raises(QueryInputError, match="--until does not apply"):
        logs(db_url, "-f", "--until", "1h")
    with pytest.raises(QueryInputError, match="no log row has this id"):
        logs(db_url, "--after", str(uuid.uuid4()))
    with pytest.raises(QueryInputError, match="malformed log id"):
        logs(db_url, "--after", "nope")


def test_rest_reads_page_past_the_row_cap(db_url, conn):
    """Over Supabase REST (the stand-in, capped at 1,000 rows like PostgREST's max-rows)
    an export of 2,500 rows arrives complete, in three bounded pages."""
    insert(conn, [entry(timestamp=at(2500 - i), message=f"r{i}") for i in range(2500)])
    request = build_request(
        build_parser().parse_args(
            ["logs", "--hours", "48", "--format", "jsonl", "--limit", "2500", "--order", "oldest"]
        )
    )
    with FakePostgrest(db_url, KEY, max_rows=1000) as fake, SupabaseExecutor(fake.url, KEY) as rest:
        out, err = io.StringIO(), io.StringIO()
        assert execute(rest, request, out, err) == 0
        paths = [r.path for r in fake.requests]
    assert [r["message"] for r in jsonl(out.getvalue())] == [f"r{i}" for i in range(2500)]
    assert paths == ["/rest/v1/rpc/func_query_logs"] * 3


def test_follow_prints_new_rows_and_rides_out_an_outage(db_url, conn):
    """The tail prints the backlog, then new rows; a REST outage is one line, then recovery."""
    insert(conn, [entry(timestamp=at(3), message="old")])
    out, err = io.StringIO(), io.StringIO()
    with FakePostgrest(db_url, KEY) as fake, SupabaseExecutor(fake.url, KEY) as rest:
        steps = iter([
            lambda: insert(conn, [entry(timestamp=at(1), message="new 1")]),
            lambda: fake.fail_next(503, times=3),
            lambda: None,
            lambda: insert(conn, [entry(timestamp=at(0.5), message="new 2"),
                                  entry(timestamp=at(1.3), message="late but in the lag window")]),
            lambda: None, lambda: None, lambda: None, lambda: None,
        ])  # fmt: skip

        def sleep(_: float) -> None:
            next(steps, lambda: None)()

        writer = RowWriter(out, "jsonl")
        follow(rest, LogFilter(since=NOW - timedelta(hours=1)), writer, err,
               backlog=10, interval=0, sleep=sleep, polls=6)  # fmt: skip
    assert [r["message"] for r in jsonl(out.getvalue())] == [
        "old", "new 1", "late but in the lag window", "new 2"
    ]  # fmt: skip
    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert "HTTP 503" in lines[0] and "retrying" in lines[0]
    assert "reachable again" in lines[1]
