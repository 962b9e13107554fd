"""bench/dashboard: what one refresh of `orchestrator dashboard` costs at 10 million rows.

Uses bench/query's data (its generator and its database handling, imported, not copied):
N rows (default 10,000,000) over 3 days, 200 workers. Because the dashboard's header
counts windows that end at the database's clock (the last 5 minutes, the last hour of
errors), the newest 65 minutes are then generated again at the same density, ending now
(rows already stamped there are deleted first), so those windows hold what a live
10M-rows-in-3-days system would have in them. The job
tables get a history of --jobs finished jobs (default 1,000,000, with their queue entries)
and 200 waiting ones, because the header's queue depth must not grow with that history.

Timed through the code the dashboard runs (QueryTailSource over a PsycopgExecutor):

    the header alone (func_log_dashboard_summary), unfiltered and for one worker; one
    refresh as the app makes it at the default settings (header + the tail re-read
    from the lag window before the newest row shown, which was read one refresh ago;
    the rows not shown yet rendered with their worker, task and cycle, as the tail
    draws them), also with the jobs screen open (+ func_jobs_overview) and without the
    rendering; for contrast the refresh of the 0.1 dashboard (the tail after a cursor
    5 s back); the first fill (header + the newest 200 rows, read newest first); the
    jobs overview alone; the queue depth alone (func_queue_depth,
    sql/functions/jobs/reads.sql), and for contrast the all-time queue statistics that
    the header used to take it from.

Each path runs --runs times after one warm-up; p50, p95 and the ratio to a baseline
measured in the same run (bench/query's: a primary-key point lookup through the same
executor). With auto_explain loadable (not in the embedded server) the plans of the
statements inside func_log_dashboard_summary are printed: indexes used and partitions
scanned.

    python bench/dashboard.py [--rows N] [--reuse] [--data-dir DIR] [--database-url URL]
                              [--runs K] [--jobs N]
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import query as query_bench

from orchestrator.dashboard.app import DashboardOptions
from orchestrator.dashboard.calls import dashboard_summary, jobs_overview
from orchestrator.dashboard.poller import PollRequest, poll
from orchestrator.dashboard.render import render_row
from orchestrator.dashboard.source import QueryTailSource
from orchestrator.dashboard.state import TailFilter, TailState
from orchestrator.dashboard.tailview import draw
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import queue_statistics, submit_job
from orchestrator.query import Cursor, calls
from orchestrator.query.tailing import NIL_ID, key

FRESH_MINUTES = 65
TAIL_LINES = 46  # the tail of a 120 x 50 terminal: the rows one refresh can bring on screen


def freshen(conn: psycopg.Connection[Any], rows: int) -> int:
    """Generates the last FRESH_MINUTES again at the data's density, ending now.

    The rows already stamped in those minutes (the end of the generated data, or an
    earlier run's fresh hour) are deleted first, so the windows the header counts hold
    the density of a 10M-rows-in-3-days system once, not twice."""
    conn.execute("SELECT func_maintain_log_partitions(days_ahead => 2, days_behind => 4)")
    start = conn.execute("SELECT now() - interval '3 days'").fetchone()[0]  # type: ignore[index]
    conn.execute(
        'DELETE FROM system_logs WHERE "timestamp" >= %s',
        [start + timedelta(days=3) - timedelta(minutes=FRESH_MINUTES)],
    )
    conn.execute("PREPARE fresh(bigint, bigint, bigint, timestamptz) AS " + query_bench.GENERATE)
    lo = rows - rows * FRESH_MINUTES // (3 * 24 * 60)
    values = sql.SQL(", ").join(map(sql.Literal, [lo, rows, rows, start]))
    conn.execute(sql.SQL("EXECUTE fresh({})").format(values))
    conn.execute("DEALLOCATE fresh")
    conn.execute("ANALYZE system_logs")
    return rows - lo


BENCH_USER = """
INSERT INTO hub_users (user_id, organization_id) VALUES ('bench-user', 'bench-org')
    ON CONFLICT (user_id) DO NOTHING
"""
JOB_HISTORY = """
WITH made AS (
    INSERT INTO jobs (user_id, organization_id, job_type, provider, priority, payload,
                      max_attempts, attempts, status, submitted_at, finished_at)
    SELECT 'bench-user', 'bench-org', 'render', 'local', 100, '{}', 3, 1,
           CASE WHEN g %% 100 = 0 THEN 'failed' WHEN g %% 50 = 0 THEN 'cancelled'
                ELSE 'completed' END,
           now() - interval '30 days', now() - interval '30 days'
      FROM generate_series(1, %(finished)s) AS g
    RETURNING job_id, status, finished_at)
INSERT INTO job_queue (job_id, status, provider, job_type, user_id, organization_id,
                       priority, attempt, max_attempts, run_after)
SELECT job_id, status, 'local', 'render', 'bench-user', 'bench-org', 100, 1, 3, finished_at
  FROM made
"""  # a finished entry's run_after is when its job finished, as the hub writes it
WAITING_JOBS = 200


def job_history(conn: psycopg.Connection[Any], finished: int) -> int:
    """Inserts finished jobs (and their queue entries) up to `finished`, then makes sure
    WAITING_JOBS are queued; returns the number of jobs."""
    conn.execute(BENCH_USER)
    have = conn.execute("SELECT count(*) FROM jobs WHERE status <> 'queued'").fetchone()[0]  # type: ignore[index]
    if have < finished:
        conn.execute(JOB_HISTORY, {"finished": finished - have})
    waiting = conn.execute("SELECT func_queue_depth()").fetchone()[0]  # type: ignore[index]
    executor = PsycopgExecutor(conn)
    for n in range(waiting, WAITING_JOBS):
        executor.run(submit_job("bench-user", "render", {"command": f"echo {n}"}))
    conn.execute("VACUUM ANALYZE jobs")
    conn.execute("VACUUM ANALYZE job_queue")
    return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])  # type: ignore[index]


def timed(run: Callable[[], Any], runs: int) -> tuple[float, float]:
    run()  # warm-up
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return statistics.median(timings), timings[
        min(len(timings) - 1, round(0.95 * (len(timings) - 1)))
    ]


def plans(conn: psycopg.Connection[Any]) -> list[str]:
    """auto_explain's plans of the statements inside one summary call (if loadable)."""
    notices: list[str] = []
    try:
        conn.execute("LOAD 'auto_explain'")
    except psycopg.Error:
        return ["auto_explain is not available on this server: no plans"]
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_analyze = on"):
        conn.execute(f"SET auto_explain.{setting}")
    conn.execute("SET client_min_messages = log")
    conn.execute("SELECT func_log_dashboard_summary()")
    conn.execute("SET client_min_messages = notice")
    parent_index = dict(
        conn.execute(
            "SELECT c.relname, p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'i'"
        ).fetchall()
    )
    lines = []
    for plan in notices:
        if "system_logs" not in plan or "Query Text: SELECT func_log" in plan:
            continue
        first = re.search(r"Query Text: (SELECT [^\n]{0,60})", plan)
        scans = sorted(
            set(
                re.findall(
                    r"(?:Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)"
                    r"(?: using| on) (\S+)",
                    plan,
                )
            )
        )
        removed = re.findall(r"Subplans Removed: (\d+)", plan)
        named = [
            f"{scan} (of {parent_index[scan]})" if scan in parent_index else scan for scan in scans
        ]
        lines.append(
            f"{first.group(1) if first else '?'}... -> scans {', '.join(named)}"
            + (f"; subplans removed at run time: {', '.join(removed)}" if removed else "")
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep data that has --rows rows")
    parser.add_argument("--data-dir", default="/tmp/hub-bench-dashboard")
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="finished jobs in history")
    args = parser.parse_args()
    with query_bench.database(args) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            # each run adds its fresh hour, so a reused table holds a little more
            query_bench.prepare(conn, args.rows, args.reuse, at_least=True)
            print(f"fresh last {FRESH_MINUTES} min: {freshen(conn, args.rows):,} rows")
            print(f"jobs: {job_history(conn, args.jobs):,} ({WAITING_JOBS} queued)")
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            measure(conn, args.runs, args.rows)


def measure(conn: psycopg.Connection[Any], runs: int, rows: int) -> None:
    executor = PsycopgExecutor(conn)
    source = QueryTailSource(executor)
    end = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    point = conn.execute(
        'SELECT id::text FROM system_logs WHERE "timestamp" <= %s'
        ' ORDER BY "timestamp" DESC LIMIT 1',
        [end - timedelta(hours=5)],
    ).fetchone()[0]  # type: ignore[index]
    defaults = DashboardOptions()

    def newest_before(seconds: float) -> Cursor:
        """The newest row ``seconds`` before the data's end (the fresh hour ends when it
        was generated, a moment before the measuring starts)."""
        back = conn.execute(
            'SELECT "timestamp", id::text FROM system_logs'
            ' WHERE "timestamp" <= (SELECT max("timestamp") FROM system_logs)'
            " - make_interval(secs => %s)"
            ' ORDER BY "timestamp" DESC, id DESC LIMIT 1',
            [seconds],
        ).fetchone()
        assert back is not None
        return Cursor(back[0].isoformat(), back[1])

    def refresh(*, jobs: bool = False, rendered: bool = True) -> Callable[[], Any]:
        """One refresh as the app makes it at the default settings: the newest row shown
        was read one refresh ago, so the tail re-reads the lag window before it (passing
        the ids it showed there, which the database leaves out) and reads what came
        since; the rows it had not shown are admitted by the lag window and appended,
        and those that reach the screen are drawn as the tail draws them (the line with
        worker, task and cycle, at 120 columns; a 120 x 50 terminal shows 46 of them)."""
        known = newest_before(defaults.refresh)
        start = Cursor(
            (datetime.fromisoformat(known.timestamp) - timedelta(seconds=defaults.lag)).isoformat(),
            NIL_ID,
        )
        state = TailState(TailFilter(), lag=timedelta(seconds=defaults.lag))
        state.filled = True
        before = poll(source, PollRequest(0, TailFilter(), start, max_rows=10**6)).rows
        state.window.admit(r for r in before if key(r.cursor) <= key(known))  # shown already
        seen, newest = dict(state.window.seen), state.window.newest
        request = PollRequest(
            0, TailFilter(), start, jobs=jobs, known=known,
            page_limit=defaults.page_rows, max_rows=defaults.scrollback,
            shown=state.window.shown_since(start),
        )  # fmt: skip
        console = Console(width=120, file=io.StringIO())

        def run() -> None:
            result = poll(source, request)
            assert result.error is None and result.jobs_error is None, result.error
            if rendered:
                state.window.seen, state.window.newest = dict(seen), newest
                fresh = state.arrived(result.rows, filled=True, watermark=None)
                assert fresh, "a refresh with nothing new measures nothing"
                for row in fresh[-TAIL_LINES:]:
                    draw(render_row(row), console, 120)

        return run

    def fill() -> None:
        result = poll(source, PollRequest(0, TailFilter(), None))
        assert result.error is None, result.error

    def old_refresh() -> None:
        request = PollRequest(0, TailFilter(), newest_before(5), page_limit=500)
        assert poll(source, request).error is None

    cases: list[tuple[str, Callable[[], Any], float]] = [
        (
            "baseline: PK point lookup (func_log_cursor)",
            lambda: executor.run(calls.log_cursor(point)),
            0,
        ),
        ("header: func_log_dashboard_summary()", lambda: executor.run(dashboard_summary()), 0),
        ("header, one worker", lambda: executor.run(dashboard_summary(worker_id="gpu-007")), 0),
        (
            f"one refresh (defaults: header + tail from the {defaults.lag:g} s lag window"
            f" before the row shown {defaults.refresh:g} s ago, new rows rendered)",
            refresh(),
            30,
        ),
        ("the same, jobs screen open (+ func_jobs_overview)", refresh(jobs=True), 30),
        (
            "the same, rows not rendered (the database and decoding only)",
            refresh(rendered=False),
            0,
        ),
        ("was one refresh: header + tail after a cursor 5 s back", old_refresh, 0),
        ("first fill: header + newest 200 rows", fill, 0),
        ("jobs screen alone: func_jobs_overview()", lambda: executor.run(jobs_overview()), 0),
        (
            "queue depth alone: func_queue_depth()",
            lambda: conn.execute("SELECT func_queue_depth()"),
            0,
        ),
        (
            "was the header's depth: func_queue_statistics()",
            lambda: executor.run(queue_statistics()),
            0,
        ),
    ]
    summary = executor.run(dashboard_summary())
    table, baseline = [], 0.0
    for name, run, target in cases:
        p50, p95 = timed(run, runs)
        baseline = baseline or p50
        verdict = "" if not target else ("met" if p50 <= target else "MISSED")
        table.append([name, f"{p50:.1f}", f"{p95:.1f}", f"{p50 / baseline:.1f}x",
                      f"<= {target:g}" if target else "", verdict])  # fmt: skip
    print(f"\n{rows:,} rows + fresh hour, {runs} runs per path (after 1 warm-up)")
    print(f"queue depth in the header: {summary.queue_depth}")
    print(
        f"header now: {summary.logs_per_minute:g} logs/min, error rate {summary.error_rate:.4f}, "
        f"{summary.active_workers} workers, {sum(summary.errors_per_minute):,} errors in the hour\n"
    )
    headers = ["path", "p50 ms", "p95 ms", "p50 / baseline", "target p50", "verdict"]
    print(tabulate(table, headers=headers, disable_numparse=True))
    print("\nPlans of the statements inside func_log_dashboard_summary (auto_explain):")
    for line in plans(conn):
        print(f"- {line}")


if __name__ == "__main__":
    main()
