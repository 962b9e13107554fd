"""A large, realistic log data set generated inside the server, for the read benchmarks.

Issue 4's scenario: N rows (default 10,000,000) over the last D days (default 3) from W
workers (200) and T tasks (50,000); a quarter of the rows come from the orchestrator
itself (no worker). Levels: DEBUG 38 %, INFO 58 %, WARNING 3 %, ERROR 0.9 %, CRITICAL
0.1 %, the shape of bench/ingest.py's rows. Error messages carry a task id or numbers,
so most of them are distinct (the hard case for grouping by message).

Rows are made by ``INSERT ... SELECT ... FROM generate_series`` through the partitioned
parent, in chunks, so every trigger on it (the count rollups of sql/0007) sees them as it
would see live writes; the data set is kept in a data directory under /tmp and reused
by later runs with the same parameters (``bench_dataset`` records them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

CHUNK = 250_000

GENERATE = """
INSERT INTO public.system_logs (id, "timestamp", source_type, source_id, log_level,
    severity_number, logger_name, message, task_id, worker_id, cycle_number, metadata)
SELECT gen_random_uuid(), b.ts,
       CASE WHEN b.orch THEN 'orchestrator_gpu' ELSE 'worker' END,
       CASE WHEN b.orch THEN 'orchestrator-0' ELSE b.worker END,
       l.level, l.severity,
       CASE WHEN b.orch THEN 'orchestrator.scheduler' ELSE 'worker.runner' END,
       CASE l.level
           WHEN 'DEBUG' THEN format('Heartbeat from %%s: gpu_util=%%s%%%% mem=%%s MiB',
                                    b.worker, b.k %% 100, b.k)
           WHEN 'INFO' THEN format('Processed %%s items in %%s ms for task %%s',
                                   b.k %% 500, b.k, coalesce(b.task::text, '-'))
           WHEN 'WARNING' THEN format(
               'Retrying request to api-%%s.internal after timeout (attempt %%s/5)',
               b.k %% 20, b.k %% 5 + 1)
           WHEN 'ERROR' THEN CASE WHEN b.k %% 2 = 0
               THEN format('Task %%s failed: CUDA out of memory allocating %%s MiB on %%s',
                           coalesce(b.task::text, '-'), b.k, b.worker)
               ELSE format('Worker %%s lost heartbeat for %%s s; requeueing %%s tasks',
                           b.worker, b.k %% 90, b.k %% 7) END
           ELSE format('Worker %%s crashed: segmentation fault in kernel launch (exit code 139)',
                       b.worker)
       END,
       b.task, CASE WHEN b.orch THEN NULL ELSE b.worker END,
       1 + (b.g * 5000 / %(rows)s)::int,
       jsonb_build_object('gpu', b.k %% 8)
  FROM (SELECT g,
               %(start)s::timestamptz
                   + (g * %(step_us)s + (random() * 200000)::bigint) * interval '1 microsecond'
                   AS ts,
               random() < 0.25 AS orch,
               format('gpu-worker-%%s',
                      lpad((random() * (%(workers)s - 1))::int::text, 3, '0')) AS worker,
               CASE WHEN random() < 0.85
                    THEN md5('task-' || (random() * (%(tasks)s - 1))::int)::uuid END AS task,
               (random() * 10000)::int AS k,
               random() AS lr
          FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g) AS b
 CROSS JOIN LATERAL (SELECT CASE WHEN b.lr < 0.38 THEN 'DEBUG' WHEN b.lr < 0.96 THEN 'INFO'
                                 WHEN b.lr < 0.99 THEN 'WARNING' WHEN b.lr < 0.999 THEN 'ERROR'
                                 ELSE 'CRITICAL' END AS level,
                            CASE WHEN b.lr < 0.38 THEN 5 WHEN b.lr < 0.96 THEN 9
                                 WHEN b.lr < 0.99 THEN 13 WHEN b.lr < 0.999 THEN 17
                                 ELSE 21 END AS severity) AS l
"""


@dataclass(frozen=True)
class Dataset:
    """What was generated: the parameters, and the instant the data ends at."""

    rows: int
    days: int
    workers: int
    tasks: int
    until: datetime

    @property
    def since(self) -> datetime:
        return self.until - timedelta(days=self.days)


def _recorded(conn: psycopg.Connection[Any]) -> Dataset | None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_dataset (rows bigint, days int, workers int,"
        " tasks int, until timestamptz)"
    )
    row = conn.execute("SELECT rows, days, workers, tasks, until FROM bench_dataset").fetchone()
    return Dataset(*row) if row else None


def ensure_dataset(
    conn: psycopg.Connection[Any], rows: int, days: int = 3, workers: int = 200, tasks: int = 50_000
) -> tuple[Dataset, bool]:
    """The data set with these parameters: reused when already there, else generated
    (after emptying the log table). Returns it and whether it was generated now."""
    found = _recorded(conn)
    if found and (found.rows, found.days, found.workers, found.tasks) == (
        rows,
        days,
        workers,
        tasks,
    ):
        return found, False
    conn.execute(
        "TRUNCATE public.system_logs, public.system_log_counts, public.system_log_error_counts,"
        " bench_dataset"
    )
    conn.execute("SELECT public.func_maintain_log_partitions(3, %s)", [days + 1])
    until = conn.execute("SELECT date_trunc('second', now()) - interval '1 minute'").fetchone()
    assert until is not None
    dataset = Dataset(rows, days, workers, tasks, until[0])
    step_us = days * 86_400_000_000 // rows
    started = time.perf_counter()
    for first in range(0, rows, CHUNK):
        last = min(first + CHUNK, rows) - 1
        params = {"rows": rows, "start": dataset.since, "step_us": step_us, "workers": workers}
        params |= {"tasks": tasks, "first": first, "last": last}
        conn.execute(GENERATE, params)
        done = last + 1
        rate = done / (time.perf_counter() - started)
        print(f"  generated {done:,} of {rows:,} rows ({rate:,.0f} rows/s)", flush=True)
    conn.execute("VACUUM ANALYZE")
    conn.execute(
        "INSERT INTO bench_dataset VALUES (%s, %s, %s, %s, %s)",
        [rows, days, workers, tasks, dataset.until],
    )
    return dataset, True


def set_rollups(conn: psycopg.Connection[Any], state: str) -> None:
    """Turns the count-rollup trigger of sql/0007 on or off, so that the write benchmarks
    can measure what it costs (``--rollups off``)."""
    action = "ENABLE" if state == "on" else "DISABLE"
    conn.execute(f"ALTER TABLE public.system_logs {action} TRIGGER system_logs_rollup")  # type: ignore[arg-type]
