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
and their ratio to a baseline measured in the same run: a primary-key point lookup
through the same executor (one round trip plus the cheapest indexed read).

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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from orchestrator.db.embedded import start_embedded
from orchestrator.db.migrate import migrate

QUERIES_SQL = Path(__file__).resolve().parent.parent / "sql" / "0006_log_queries.sql"

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
SELECT public.func_uuid_v7(ts), ts, ts + interval '40 milliseconds',
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


def prepare(conn: psycopg.Connection[Any], rows: int, reuse: bool) -> None:
    """Migrates, then generates unless --reuse finds exactly ``rows`` rows already."""
    migrate(conn)
    # The query functions are re-applied from this checkout (the file is idempotent), so
    # a reused database runs the SQL being measured, not the one it was generated with.
    conn.execute(QUERIES_SQL.read_text())
    have = conn.execute("SELECT count(*) FROM system_logs").fetchone()[0]  # type: ignore[index]
    if reuse and have == rows:
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


if __name__ == "__main__":
    main()
