"""The read contract of sql/functions/logs/queries.sql (func_query_logs, timelines, errors summary, cursors)
through the Python API, on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.errors import QueryInputError
from orchestrator.logs import calls as db_calls
from orchestrator.query import Cursor, LogFilter, calls, iter_logs, iter_pages, query_logs
from tests.integration.logrows import entry, insert, rows

NOW = datetime.now(UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def seed(conn: psycopg.Connection[Any]) -> str:
    """A small, varied log: two workers, an orchestrator, a task, every level."""
    task = str(uuid.uuid4())
    batch = [
        entry(
            timestamp=at(50), worker_id="gpu-1", source_id="gpu-1", message="start", task_id=task
        ),
        entry(
            timestamp=at(40),
            worker_id="gpu-1",
            source_id="gpu-1",
            log_level="DEBUG",
            message="tick",
        ),
        entry(
            timestamp=at(30),
            worker_id="gpu-2",
            source_id="gpu-2",
            log_level="WARNING",
            message="hot",
        ),
        entry(
            timestamp=at(20),
            worker_id="gpu-2",
            source_id="gpu-2",
            log_level="ERROR",
            message="oom",
            task_id=task,
        ),
        entry(
            timestamp=at(10),
            source_type="orchestrator_gpu",
            source_id="orch-1",
            cycle_number=7,
            message="cycle",
        ),
        entry(
            timestamp=at(5),
            source_type="orchestrator_gpu",
            source_id="orch-1",
            cycle_number=8,
            log_level="CRITICAL",
            message="down",
        ),
        entry(timestamp=at(60 * 30), worker_id="gpu-1", source_id="gpu-1", message="yesterday"),
    ]
    assert insert(conn, batch).inserted == len(batch)
    return task


def messages(page_or_rows: Any) -> list[str]:
    items = page_or_rows.rows if hasattr(page_or_rows, "rows") else page_or_rows
    return [r.message for r in items]


def run(conn, flt: LogFilter, **kw: Any):
    return query_logs(PsycopgExecutor(conn), flt, **kw)


def test_each_filter_narrows_to_exactly_its_rows(conn):
    """Every filter of LogFilter matches what it says, alone and combined."""
    task = seed(conn)
    hour = NOW - timedelta(hours=1)
    assert messages(run(conn, LogFilter(since=hour))) == [
        "start", "tick", "hot", "oom", "cycle", "down"
    ]  # fmt: skip
    assert messages(run(conn, LogFilter(worker_id="gpu-1"))) == ["yesterday", "start", "tick"]
    assert messages(run(conn, LogFilter(task_id=task))) == ["start", "oom"]
    assert messages(run(conn, LogFilter(source_type="orchestrator_gpu"))) == ["cycle", "down"]
    assert messages(run(conn, LogFilter(source_id="gpu-2"))) == ["hot", "oom"]
    assert messages(run(conn, LogFilter(cycle_number=8))) == ["down"]
    assert messages(run(conn, LogFilter(levels=("error", "Critical")))) == ["oom", "down"]
    assert messages(run(conn, LogFilter(levels=("WARN",)))) == ["hot"]
    assert messages(run(conn, LogFilter(min_level="warning"))) == ["hot", "oom", "down"]
    assert messages(run(conn, LogFilter(until=NOW - timedelta(minutes=45)))) == [
        "yesterday", "start"
    ]  # fmt: skip
    both = LogFilter(since=hour, worker_id="gpu-1", min_level="INFO")
    assert messages(run(conn, both)) == ["start"]


def test_a_row_carries_every_column(conn):
    """Rows come back with every system_logs column, typed."""
    task = seed(conn)
    page = run(conn, LogFilter(task_id=task, levels=("ERROR",)))
    (row,) = page.rows
    stored = rows(conn, "message = 'oom'")[0]
    assert row.id == str(stored["id"]) and row.timestamp == stored["timestamp"]
    assert row.task_id == task and row.worker_id == "gpu-2" and row.severity_number == 17
    assert set(row.to_json()) == set(stored)
    assert (page.more, page.next) == (False, None)


def _tied_rows(conn) -> list[str]:
    """25 rows sharing one timestamp (ties broken by id) between 10 others."""
    same = at(30)
    batch = [entry(timestamp=at(31 + i), message=f"before{i}") for i in range(5)]
    batch += [entry(timestamp=same, message=f"tie{i}") for i in range(25)]
    batch += [entry(timestamp=at(29 - i), message=f"after{i}") for i in range(5)]
    insert(conn, batch)
    return [r["message"] for r in rows(conn)]


@pytest.mark.parametrize("newest_first", [False, True])
def test_keyset_pages_cover_everything_once_in_both_directions(conn, newest_first):
    """Pages of 7 chained by `next` give every row exactly once, in order, ties included."""
    expected = _tied_rows(conn)
    if newest_first:
        expected.reverse()
    executor, seen, after, pages = PsycopgExecutor(conn), [], None, 0
    while True:
        page = query_logs(executor, LogFilter(), after=after, limit=7, newest_first=newest_first)
        seen += messages(page)
        pages += 1
        assert len(page.rows) <= 7
        if not page.more:
            assert page.next is None
            break
        assert page.next == page.last
        after = page.next
    assert seen == expected
    assert pages == 5  # 35 rows: four full pages, and a fifth that says "no more"
    streamed = iter_logs(executor, LogFilter(), page_size=4, newest_first=newest_first)
    assert [r.message for r in streamed] == expected


def test_exact_page_says_no_more(conn):
    """A page that ends exactly at the last row reports more=false (row_limit+1 probe)."""
    insert(conn, [entry(timestamp=at(i), message=f"m{i}") for i in range(3)])
    page = run(conn, LogFilter(), limit=3)
    assert (len(page.rows), page.more, page.next) == (3, False, None)
    page = run(conn, LogFilter(), limit=2)
    assert (len(page.rows), page.more, page.next) == (2, True, page.last)


LITERAL = [
    "100% done",
    "100x done",
    "a_b",
    "axb",
    "back\\slash",
    "backslash",
    "it's 'quoted'",
    "plain",
]


@pytest.mark.parametrize(
    ("needle", "found"),
    [
        ("100%", ["100% done"]),
        ("%", ["100% done"]),
        ("_", ["a_b"]),
        ("a_b", ["a_b"]),
        ("\\", ["back\\slash"]),
        ("k\\s", ["back\\slash"]),
        ("'quoted'", ["it's 'quoted'"]),
        ("IT'S", ["it's 'quoted'"]),
        ("DONE", ["100% done", "100x done"]),
        ("'; DROP TABLE system_logs; --", []),
        ("%%", []),
    ],
)
def test_search_is_literal_and_case_insensitive(conn, needle, found):
    """%, _, \\ and quotes match themselves; nothing is a wildcard or SQL."""
    insert(conn, [entry(timestamp=at(len(LITERAL) - i), message=m) for i, m in enumerate(LITERAL)])
    assert messages(run(conn, LogFilter(search=needle))) == found
    assert conn.execute("SELECT count(*) FROM system_logs").fetchone()[0] == len(LITERAL)


def test_task_timeline_covers_its_whole_life_past_a_thousand_rows(conn):
    """1,200 rows of one task over three days come back complete, oldest first, in pages."""
    conn.execute("SELECT func_maintain_log_partitions(days_ahead => 1, days_behind => 4)")
    task = str(uuid.uuid4())
    batch = [
        entry(timestamp=(NOW - timedelta(hours=70) + timedelta(minutes=3 * i)).isoformat(),
              task_id=task, message=f"step {i}")
        for i in range(1200)
    ]  # fmt: skip
    insert(conn, batch)
    insert(conn, [entry(task_id=str(uuid.uuid4()), message="other task")])
    executor = PsycopgExecutor(conn)
    pages = list(iter_pages(executor, lambda cur: calls.task_timeline(task, after=cur)))
    assert [len(p.rows) for p in pages] == [1000, 200]
    got = [r.message for p in pages for r in p.rows]
    assert got == [f"step {i}" for i in range(1200)]
    assert pages[0].rows[0].timestamp < NOW - timedelta(hours=69)


def test_worker_timeline_is_a_window_of_one_worker(conn):
    """func_worker_timeline pages one worker's rows of [since, until)."""
    seed(conn)
    executor = PsycopgExecutor(conn)
    page = executor.run(calls.worker_timeline("gpu-1", NOW - timedelta(hours=2), limit=1))
    assert (messages(page), page.more) == (["start"], True)
    page = executor.run(
        calls.worker_timeline("gpu-1", NOW - timedelta(hours=2), after=page.next, limit=1)
    )
    assert (messages(page), page.more) == (["tick"], False)


def test_errors_summary_counts_exactly(conn):
    """Totals, groups and top messages equal a count of the stored rows."""
    batch = []
    for i in range(60):
        batch.append(entry(
            timestamp=at(i), log_level="ERROR" if i % 3 else "CRITICAL",
            worker_id=f"gpu-{i % 4}", source_id=f"gpu-{i % 4}", message=f"fail {i % 5}",
        ))  # fmt: skip
    batch += [entry(timestamp=at(1), log_level="WARNING", message="fail 0")]
    batch += [entry(timestamp=at(60 * 5), log_level="ERROR", message="old")]
    batch += [entry(timestamp=at(1), log_level="ERROR", source_type="orchestrator_gpu",
                    source_id="orch-1", message="fail 0")]  # fmt: skip
    insert(conn, batch)
    since, until = NOW - timedelta(hours=2), NOW + timedelta(minutes=1)
    summary = PsycopgExecutor(conn).run(calls.errors_summary(since, until, top=3))
    errors = [
        r for r in rows(conn) if r["severity_number"] >= 17 and since <= r["timestamp"] < until
    ]
    assert summary.total == len(errors) == 61
    assert summary.by_level == dict(Counter(r["log_level"] for r in errors))
    by_worker = Counter(r["worker_id"] for r in errors if r["worker_id"])
    ranked = sorted(by_worker.items(), key=lambda kv: (-kv[1], kv[0]))[:3]  # ties by name
    assert [(w["worker_id"], w["count"]) for w in summary.by_worker] == ranked
    assert summary.distinct_workers == 4 and len(summary.by_worker) == 3
    assert summary.distinct_sources == 5
    grouped = Counter((r["message"], r["log_level"], r["source_type"]) for r in errors)
    top = summary.top_messages[0]
    assert grouped[(top["message"], top["log_level"], top["source_type"])] == top["count"]
    assert top["count"] == max(grouped.values())
    assert summary.distinct_messages == len(grouped)
    only = PsycopgExecutor(conn).run(
        calls.errors_summary(since, until, source_type="orchestrator_gpu")
    )
    assert (only.total, only.by_level) == (1, {"ERROR": 1})
    one_worker = PsycopgExecutor(conn).run(calls.errors_summary(since, until, worker_id="gpu-1"))
    assert one_worker.total == by_worker["gpu-1"]


def test_statistics_agree_with_a_page_count(conn):
    """func_log_statistics (reused for --stats) counts what func_query_logs returns."""
    seed(conn)
    since, until = NOW - timedelta(hours=1), NOW + timedelta(minutes=1)
    stats = PsycopgExecutor(conn).run(db_calls.log_statistics(since, until))
    listed = run(conn, LogFilter(since=since, until=until), limit=1000).rows
    assert stats.total == len(listed) == 6
    assert stats.errors == sum(r.severity_number >= 17 for r in listed)


def test_cursor_of_an_id_for_v7_and_other_ids(conn):
    """func_log_cursor finds UUIDv7 ids by their time, others inside the window."""
    insert(conn, [entry(timestamp=at(3), message="v4")])  # entry() makes uuid4 ids
    insert(conn, [{k: v for k, v in entry(timestamp=at(2), message="v7").items() if k != "id"}])
    executor = PsycopgExecutor(conn)
    for stored in rows(conn):
        cursor = executor.run(calls.log_cursor(str(stored["id"]), NOW - timedelta(hours=1)))
        assert cursor is not None and cursor.id == str(stored["id"])
        assert datetime.fromisoformat(cursor.timestamp) == stored["timestamp"]
    assert executor.run(calls.log_cursor(str(uuid.uuid4()))) is None
    v4 = rows(conn, "message = 'v4'")[0]
    page = run(conn, LogFilter(), after=executor.run(calls.log_cursor(str(v4["id"]))))
    assert messages(page) == ["v7"]


def test_bad_input_is_refused_before_and_by_the_database(conn):
    """The Python side names the problem; the SQL side refuses the same on its own."""
    with pytest.raises(QueryInputError, match="unknown level 'loud'"):
        LogFilter(levels=("loud",))
    with pytest.raises(QueryInputError, match="malformed task id"):
        LogFilter(task_id="123")
    with pytest.raises(QueryInputError, match="limit must be between 1 and 10000"):
        calls.query_logs(LogFilter(), limit=0)
    with pytest.raises(QueryInputError, match="empty time window"):
        LogFilter(since=NOW, until=NOW)
    for statement, fragment in [
        ("SELECT func_query_logs(levels => '[\"loud\"]')", "unknown log level 'loud'"),
        ("SELECT func_query_logs(min_level => 'x')", "unknown log level 'x'"),
        ("SELECT func_query_logs(row_limit => 0)", "row_limit must be between"),
        ("SELECT func_query_logs(levels => '\"ERROR\"')", "levels must be a JSON array"),
        ("SELECT func_query_logs(after_id => gen_random_uuid())", "after_id needs after_timestamp"),
        ("SELECT func_task_timeline(NULL)", "task_id is required"),
        ("SELECT func_worker_timeline('w', NULL)", "since is required"),
        ("SELECT func_log_errors_summary(now(), top => 0)", "top must be between"),
        ("SELECT func_query_logs(except_ids => '{\"a\": 1}')", "except_ids must be a JSON array"),
        ("SELECT func_query_logs(except_ids => '[1]')", "except_ids must be a JSON array"),
        ("SELECT func_query_logs(except_ids => '[\"nope\"]')", "except_ids must hold log ids"),
    ]:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=fragment):
            conn.execute(statement)


def test_cursor_value_round_trips_as_given(conn):
    """A Cursor built from text (as a user or REST would) continues the same read."""
    insert(conn, [entry(timestamp=at(i), message=f"m{i}") for i in (3, 2, 1)])
    first = run(conn, LogFilter(), limit=1)
    again = Cursor(first.next.timestamp, first.next.id.upper())
    assert messages(run(conn, LogFilter(), after=again)) == ["m2", "m1"]


def test_except_ids_leave_rows_out_and_pages_go_on_past_them(conn):
    """A tail re-reading its lag window passes the ids it showed: only the others come
    back, a page is still full, and next continues after the last row sent."""
    entries = [
        entry(id=str(uuid.uuid4()), timestamp=at(10 - i), message=f"m{i}") for i in range(10)
    ]
    insert(conn, entries)
    shown = [e["id"] for e in entries[:6]]
    page = run(conn, LogFilter(), limit=3, except_ids=shown)
    assert messages(page) == ["m6", "m7", "m8"] and page.more
    rest = run(conn, LogFilter(), limit=3, after=page.next, except_ids=shown)
    assert messages(rest) == ["m9"] and not rest.more
    assert messages(run(conn, LogFilter(), except_ids=[])) == [f"m{i}" for i in range(10)]
