"""bench/query: how fast are the read paths of issue 4 at 10 million rows?

Generates N rows (default 10,000,000) over the 3 days before the moment of generation,
200 workers, 50,000 tasks, server-side (``INSERT ... SELECT`` over ``generate_series``,
one statement per hour of data, so each lands in one daily partition), then times each
read path through the same Call values and executor the CLI uses:

    worker timeline (first page of 100 and of 1000 rows over 24 h), task timeline (whole
    life), errors summary over 24 h, statistics over 24 h, literal search of a common and
    of a rare word over 24 h (newest first, one page), and one dashboard refresh (the
    tail: rows after a cursor near the end of the data).

Each path runs ``--runs`` times (default 15, after one warm-up) and reports p50 and p95,
their ratio to a primary-key point lookup through the same executor (one round trip
plus the cheapest indexed read), and, for the pages of rows (timelines, the dashboard's
tail), their ratio to the plain SQL a user would write against the same table for the
same rows (``SELECT * ... WHERE ... ORDER BY "timestamp", id LIMIT n`` through psycopg,
rows fetched and decoded), timed in the same run: target (issue 20) at most 1.3x.

EXPLAIN evidence comes from the statements the functions really execute: the session
loads ``auto_explain`` with ``log_nested_statements`` and the plans it writes to the
server log are parsed (index names used, partitions scanned versus partitions in the
table). Nothing of the functions' SQL is copied here.

    python bench/query.py [--rows N] [--reuse] [--data-dir DIR] [--database-url URL]
                          [--runs K] [--generate-only]

Without --database-url the embedded server (pgserver) runs in --data-dir (default
/tmp/hub-bench-query); --reuse keeps its data between runs when it holds N rows.
The generated rows are described in :data:`GENERATE`; their "now" is the newest row,
so windows such as "24 h" are relative to the data, not to the clock.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from explain import explain  # bench/ is the script's directory
from psycopg import sql
from tabulate import tabulate

from orchestrator.db.calls import Call
from orchestrator.db.embedded import start_embedded
from orchestrator.db.migrate import migrate
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.logs import calls as db_calls
from orchestrator.logs.calls import LogStatistics
from orchestrator.query import Cursor, ErrorsSummary, LogFilter, LogPage, calls

# One hour of data, rows [lo, hi) of n over the 3 days before $start: $1 lo, $2 hi, $3 n,
# $4 start. Row i is at start + i * 3 days / n. One row in ten is the orchestrator's
# (cycle = minute of the run); the others belong to worker i % 200, which runs its 250
# tasks one after another (so a task has n / 50,000 rows). Levels: DEBUG 10 %, INFO 78 %,
# WARNING 10 %, ERROR 1.8 %, CRITICAL 0.2 %. Messages come from a few templates with
# numbers in them; "checkpoint" is in ~19 % of the rows, "segfault" in ~0.001 %.
GENERATE = """
INSERT INTO public.system_logs (id, "timestamp", observed_at, source_type, source_id,
    log_level, severity_number, logger_name, message, task_id, worker_id, cycle_number,
    exception, metadata)
SELECT hub_internal.func_uuid_v7(ts), ts, ts + interval '40 milliseconds',
       CASE WHEN orch THEN 'orchestrator_gpu' ELSE 'worker' END,
       CASE WHEN orch THEN 'orch-1' ELSE worker END,
       lvl, sev,
       CASE WHEN orch THEN 'orchestrator.daemon' ELSE 'orchestrator.worker' END,
       CASE
         WHEN rare THEN 'segfault in libcuda.so at 0x' || to_hex(r3 * 4099) || ' on ' || worker
         WHEN sev >= 21 THEN (ARRAY['Worker ' || worker || ' lost its heartbeat; marking it dead',
                                    'Disk full on /scratch of ' || worker])[1 + r2 % 2]
         WHEN sev >= 17 THEN (ARRAY[
                'CUDA out of memory: tried to allocate ' || (r3 % 16) || ' GiB',
                'Task failed: connection reset by peer (attempt ' || (r3 % 5) || ')',
                'Upload to s3://runs failed: timeout after 30 s',
                'NaN loss at step ' || (r3 % 50) || '; aborting task'])[1 + r2 % 4]
         WHEN sev >= 13 THEN (ARRAY[
                'Retrying request to api-' || (r3 % 8) || '.internal after timeout',
                'GPU temperature ' || (70 + r3 % 20) || 'C above threshold; throttling',
                'Slow batch: ' || (r3 * 3) || ' ms for 64 items'])[1 + r2 % 3]
         WHEN orch THEN (ARRAY[
                'Cycle ' || cyc || ': assigned ' || (r3 % 40) || ' tasks to '
                    || (r3 % 200) || ' workers',
                'Queue depth ' || r3 || ' after cycle ' || cyc,
                'Checkpoint of scheduler state written (' || r3 || ' jobs)'])[1 + r2 % 3]
         ELSE (ARRAY[
                'Processed ' || r3 || ' items in ' || (r3 * 7 % 900) || ' ms',
                'Checkpoint saved to s3://runs/model-' || (w % 7) || '/step-' || r3 || '.pt',
                'Fetched batch ' || r3 || ' of 1000 (' || (r3 % 64) || ' items)',
                'Heartbeat: gpu_util=' || (r3 % 100) || '% mem=' || (r3 * 11) || ' MiB',
                'Step ' || r3 || ': loss=' || round((r3 % 1000) / 997.0, 4)
                    || ' lr=3e-4'])[1 + r2 % 5]
       END,
       CASE WHEN orch THEN NULL ELSE md5('task-' || task)::uuid END,
       CASE WHEN orch THEN NULL ELSE worker END,
       CASE WHEN orch THEN cyc END,
       CASE WHEN sev >= 17 THEN E'Traceback (most recent call last):\\n  File "worker.py", line '
                                || (r3 % 400) || E', in run\\nRuntimeError: see message' END,
       CASE WHEN sev >= 17 THEN jsonb_build_object('attempt', r3 % 5) ELSE '{}'::jsonb END
  FROM (
    SELECT i, ts, w, orch, r2, r3, rare, worker,
           (w * 250 + ((i / 200) * 250 * 200) / $3)::bigint AS task,
           (i * 4320 / $3)::integer AS cyc,
           CASE WHEN r1 < 1000 THEN 'DEBUG' WHEN r1 < 8800 THEN 'INFO' WHEN r1 < 9800 THEN 'WARNING'
                WHEN r1 < 9980 THEN 'ERROR' ELSE 'CRITICAL' END AS lvl,
           CASE WHEN r1 < 1000 THEN 5 WHEN r1 < 8800 THEN 9 WHEN r1 < 9800 THEN 13
                WHEN r1 < 9980 THEN 17 ELSE 21 END AS sev
      FROM (
        SELECT i,
               $4::timestamptz + (i * (259200000000 / $3)) * interval '1 microsecond' AS ts,
               (i % 200)::integer AS w,
               'gpu-' || lpad((i % 200)::text, 3, '0') AS worker,
               abs(hashint8(i * 3 + 1)) % 10 = 0 AS orch,
               abs(hashint8(i)) % 10000 AS r1,
               abs(hashint8(i * 5 + 2)) % 10000 AS r2,
               abs(hashint8(i * 7 + 3)) % 1000 AS r3,
               abs(hashint8(i * 13 + 4)) % 100000 = 0 AS rare
          FROM generate_series($1::bigint, $2::bigint - 1) AS i
      ) drawn
  ) shaped
"""


def generate(conn: psycopg.Connection[Any], rows: int) -> float:
    """Fills system_logs with ``rows`` rows over the 3 days before now; returns seconds."""
    started = time.perf_counter()
    conn.execute("SELECT func_maintain_log_partitions(days_ahead => 2, days_behind => 4)")
    conn.execute("SET synchronous_commit = off")
    start = conn.execute("SELECT now() - interval '3 days'").fetchone()[0]  # type: ignore[index]
    conn.execute("PREPARE generate_hour(bigint, bigint, bigint, timestamptz) AS " + GENERATE)
    chunks = 72
    for hour in range(chunks):
        lo, hi = rows * hour // chunks, rows * (hour + 1) // chunks
        values = sql.SQL(", ").join(map(sql.Literal, [lo, hi, rows, start]))
        conn.execute(sql.SQL("EXECUTE generate_hour({})").format(values))
        if hour % 6 == 5:
            elapsed = time.perf_counter() - started
            print(f"  generated {hi:,} rows in {elapsed:.0f} s", flush=True)
    print("  VACUUM ANALYZE ...", flush=True)
    conn.execute("VACUUM (ANALYZE) system_logs")
    return time.perf_counter() - started


def prepare(
    conn: psycopg.Connection[Any], rows: int, reuse: bool, *, at_least: bool = False
) -> None:
    """Migrates (a reused database gets the function files of this checkout, as any
    database does), then generates unless --reuse finds exactly ``rows`` rows already
    (``at_least``: that many or more, for benches that add fresh rows to each run's)."""
    migrate(conn)
    have = conn.execute("SELECT count(*) FROM system_logs").fetchone()[0]  # type: ignore[index]
    if reuse and (have >= rows if at_least else have == rows):
        print(f"reusing {have:,} rows")
        return
    conn.execute("TRUNCATE system_logs")
    print(f"generating {rows:,} rows ...", flush=True)
    print(f"generated in {generate(conn, rows):.0f} s")


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """The URL to benchmark: --database-url, else the embedded server in --data-dir."""
    if args.database_url:
        yield args.database_url
        return
    data_dir = Path(args.data_dir)
    if not args.reuse and data_dir.exists():
        shutil.rmtree(data_dir)
    server = start_embedded(data_dir)
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            # Our own throw-away server: let a 10M-row load checkpoint less often.
            conn.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
            conn.execute("SELECT pg_reload_conf()")
        yield server.url
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep data that has --rows rows")
    parser.add_argument("--data-dir", default="/tmp/hub-bench-query")
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()
    with database(args) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            prepare(conn, args.rows, args.reuse)
        if args.generate_only:
            return
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            measure(conn, args.runs, args.rows)


def _targets(conn: psycopg.Connection[Any], end: datetime) -> dict[str, Any]:
    """Workers, tasks and a tail cursor to read, spread over the data (rotated per run)."""
    tasks = conn.execute(
        'SELECT task_id::text FROM system_logs WHERE "timestamp" >= %s AND task_id IS NOT NULL'
        ' ORDER BY "timestamp" LIMIT 2000',
        [end - timedelta(hours=30)],
    ).fetchall()
    tail = conn.execute(
        'SELECT "timestamp", id::text FROM system_logs WHERE "timestamp" <= %s'
        ' ORDER BY "timestamp" DESC, id DESC LIMIT 1',
        [end - timedelta(seconds=5)],
    ).fetchone()
    point = conn.execute(
        'SELECT id::text FROM system_logs WHERE "timestamp" <= %s'
        ' ORDER BY "timestamp" DESC LIMIT 1',
        [end - timedelta(hours=5)],
    ).fetchone()
    assert tail is not None and point is not None
    return {
        "workers": [f"gpu-{w:03d}" for w in range(0, 200, 7)],
        "tasks": sorted({t for (t,) in tasks})[::7][:40],
        "tail": Cursor(tail[0].isoformat(), tail[1]),
        "point": point[0],
    }


PlainSql = Callable[[int], tuple[str, list[Any]]] | None


def plain_sql(end: datetime, t: dict[str, Any]) -> dict[str, PlainSql]:
    """The statement a user would write for the same rows, by path name."""
    day = end - timedelta(hours=24)
    until = end + timedelta(seconds=1)
    order = ' ORDER BY "timestamp", id LIMIT '

    def worker(i: int) -> str:
        return str(t["workers"][i % len(t["workers"])])

    return {
        "worker timeline, 24 h, first 100 rows": lambda i: (
            'SELECT * FROM system_logs WHERE worker_id = %s AND "timestamp" >= %s'
            ' AND "timestamp" < %s' + order + "100", [worker(i), day, until]),
        "worker timeline, 24 h, first 1000 rows": lambda i: (
            'SELECT * FROM system_logs WHERE worker_id = %s AND "timestamp" >= %s'
            ' AND "timestamp" < %s' + order + "1000", [worker(i), day, until]),
        "task timeline, whole life": lambda i: (
            "SELECT * FROM system_logs WHERE task_id = %s" + order + "1000",
            [t["tasks"][i % len(t["tasks"])]]),
        "dashboard refresh: tail after a cursor 5 s back": lambda i: (
            'SELECT * FROM system_logs WHERE ("timestamp", id) > (%s::timestamptz, %s::uuid)'
            ' AND "timestamp" >= %s::timestamptz' + order + "1000",
            [t["tail"].timestamp, t["tail"].id, t["tail"].timestamp]),
    }  # fmt: skip


def paths(end: datetime, t: dict[str, Any]) -> list[tuple[str, Callable[[int], Call[Any]], float]]:
    """(name, run number -> Call, p50 target in ms or 0) for every read path."""
    day = end - timedelta(hours=24)
    until = end + timedelta(seconds=1)

    def worker(i: int) -> str:
        return str(t["workers"][i % len(t["workers"])])

    return [
        ("baseline: PK point lookup (func_log_cursor)",
         lambda i: calls.log_cursor(t["point"]), 0),
        ("worker timeline, 24 h, first 100 rows",
         lambda i: calls.worker_timeline(worker(i), day, until, limit=100), 50),
        ("worker timeline, 24 h, first 1000 rows",
         lambda i: calls.worker_timeline(worker(i), day, until, limit=1000), 50),
        ("task timeline, whole life",
         lambda i: calls.task_timeline(t["tasks"][i % len(t["tasks"])]), 50),
        ("errors summary, 24 h",
         lambda i: calls.errors_summary(day, until), 50),
        ("stats, 24 h (func_log_statistics)",
         lambda i: db_calls.log_statistics(day, until), 300),
        ("search 'checkpoint' (common), 24 h, newest 100",
         lambda i: calls.query_logs(LogFilter(since=day, until=until, search="checkpoint"),
                                    newest_first=True), 0),
        ("search 'segfault' (rare), 24 h, newest 100",
         lambda i: calls.query_logs(LogFilter(since=day, until=until, search="segfault"),
                                    newest_first=True), 0),
        ("dashboard refresh: tail after a cursor 5 s back",
         lambda i: calls.query_logs(LogFilter(), after=t["tail"], limit=1000), 30),
    ]  # fmt: skip


def measure(conn: psycopg.Connection[Any], runs: int, rows: int) -> None:
    """Times every path ``runs`` times after a warm-up; prints the table and the plans."""
    end = conn.execute('SELECT max("timestamp") FROM system_logs').fetchone()[0]  # type: ignore[index]
    targets = _targets(conn, end)
    executor = PsycopgExecutor(conn)
    started = time.perf_counter()
    for _ in range(20):
        conn.execute("SELECT 1")
    select_one = (time.perf_counter() - started) / 20 * 1000
    table, evidence = [], []
    baseline = 0.0
    plain = plain_sql(end, targets)
    for name, make, target in paths(end, targets):
        result = executor.run(make(0))  # warm-up, and a look at the size of the answer
        statement = plain.get(name)
        if statement is not None:
            text, args = statement(0)
            conn.execute(text, args).fetchall()  # the plain SQL's warm-up
        timings, plain_timings = [], []
        for i in range(runs):
            # The function and its plain SQL alternate, run by run: on a shared machine
            # the load changes within seconds, and a ratio of two medians taken a
            # minute apart measured the load, not the code.
            call = make(i + 1)
            t0 = time.perf_counter()
            executor.run(call)
            timings.append((time.perf_counter() - t0) * 1000)
            if statement is not None:
                text, args = statement(i + 1)
                t0 = time.perf_counter()
                conn.execute(text, args).fetchall()
                plain_timings.append((time.perf_counter() - t0) * 1000)
        timings.sort()
        p50 = statistics.median(timings)
        p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
        baseline = baseline or p50
        verdict = "" if not target else ("met" if p50 <= target else "MISSED")
        versus = ""
        if plain_timings:
            plain_p50 = statistics.median(plain_timings)
            versus = f"{plain_p50:.1f} ms, {p50 / plain_p50:.2f}x"
            verdict += (" / " if verdict else "") + ("met" if p50 <= 1.3 * plain_p50 else "MISSED")
        table.append([name, _size(result), f"{p50:.1f}", f"{p95:.1f}", f"{p50 / baseline:.1f}x",
                      versus, f"<= {target:g}" if target else "", verdict])  # fmt: skip
        if target or "search" in name:
            evidence.append((name, explain(conn, make(1)).describe()))
    print(f"\n{rows:,} rows, {runs} runs per path (after 1 warm-up); ", end="")
    print(f"data ends {end:%Y-%m-%d %H:%M} UTC")
    print(f"SELECT 1 round trip: {select_one:.2f} ms\n")
    headers = ["path", "answer", "p50 ms", "p95 ms", "p50 / baseline",
               "plain SQL p50, ratio (<= 1.3x)", "target p50", "verdict"]  # fmt: skip
    print(tabulate(table, headers=headers, disable_numparse=True))
    print("\nEXPLAIN of the statement each function runs (bench/explain.py):")
    for name, line in evidence:
        print(f"- {name}: {line}")


def _size(result: Any) -> str:
    if isinstance(result, LogPage):
        return f"{len(result.rows)} rows" + (", more" if result.more else "")
    if isinstance(result, ErrorsSummary):
        return f"{result.total:,} errors"
    if isinstance(result, LogStatistics):
        return f"{result.total:,} rows"
    return "1 row" if result is not None else "none"


if __name__ == "__main__":
    main()
