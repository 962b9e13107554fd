"""bench/metrics_scrape: one Prometheus scrape of a hub holding 10,000,000 log rows and
1,000,000 finished jobs.

Data: bench/query.py's 10M-row log set over 3 days (its generator, imported), and
--jobs finished jobs written with their queue entries and their three job_events each
(submitted, claimed, completed/failed/cancelled), then folded into the job counters as
the daemon would have, so they hold what a hub that ran them would hold. The database
is the bench's own embedded server in --data-dir (or --database-url's; --reuse keeps
generated data).

Timed over real HTTP against `orchestrator serve --no-daemon` with the database metrics
cache off (ORCHESTRATOR_METRICS_DB_CACHE_SECONDS=0: every scrape reads the database, the
worst case), --runs sequential requests on one keep-alive connection after a warm-up:

    /health/live (the HTTP floor), /metrics with the standard and the full template,
    func_ops_metrics() alone through psycopg (the database's share), and for contrast the
    count a metrics exporter without counters would run (jobs by status, GROUP BY).

Target: a full scrape p99 <= 100 ms.

    python bench/metrics_scrape.py [--rows N] [--jobs N] [--runs 200] [--reuse]
                                   [--data-dir DIR] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import query as query_bench
from http_health import free_port, wait_live
from http_load import LoadResult, sequential

TOKEN = "bench-admin-token"
BENCH_USER = """
INSERT INTO hub_users (user_id, organization_id) VALUES ('bench-user', 'bench-org')
    ON CONFLICT (user_id) DO NOTHING
"""
JOB_CHUNK = """
WITH made AS (
    INSERT INTO jobs (user_id, organization_id, job_type, provider, priority, payload,
                      estimated_cost, max_attempts, attempts, status, submitted_at,
                      started_at, finished_at)
    SELECT 'bench-user', 'bench-org', 'render',
           CASE WHEN g %% 4 = 0 THEN 'cloud-a' ELSE 'local' END,
           100, '{}', (g %% 7)::numeric, 3, 1,
           CASE WHEN g %% 100 = 0 THEN 'failed' WHEN g %% 50 = 0 THEN 'cancelled'
                ELSE 'completed' END,
           now() - interval '30 days', now() - interval '30 days',
           now() - interval '30 days' + make_interval(secs => g %% 600)
      FROM generate_series(1, %(n)s) AS g
    RETURNING job_id, status, provider),
queued AS (
    INSERT INTO job_queue (job_id, status, provider, job_type, user_id, organization_id,
                           priority, attempt, max_attempts)
    SELECT job_id, status, provider, 'render', 'bench-user', 'bench-org', 100, 1, 3 FROM made)
INSERT INTO job_events (job_id, event_type, from_status, to_status, created_at)
SELECT m.job_id, e.event_type, e.from_status, e.to_status, now() - interval '30 days'
  FROM made m,
       LATERAL (VALUES ('submitted', NULL, 'queued'), ('claimed', 'queued', 'running'),
                       (m.status, 'running', m.status)) AS e(event_type, from_status, to_status)
"""


def fill_jobs(conn: psycopg.Connection, jobs: int) -> int:
    """Finished jobs (with queue entries and events) up to ``jobs``; returns the count."""
    conn.execute(BENCH_USER)
    have = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]  # type: ignore[index]
    started = time.perf_counter()
    while have < jobs:
        n = min(100_000, jobs - have)
        conn.execute(JOB_CHUNK, {"n": n})
        have += n
        print(f"  {have:,} jobs in {time.perf_counter() - started:.0f} s", flush=True)
    conn.execute("VACUUM ANALYZE jobs")
    conn.execute("VACUUM ANALYZE job_queue")
    conn.execute("VACUUM ANALYZE job_events")
    folded = 0
    while True:  # the daemon's job_counters duty, caught up
        step = conn.execute("SELECT func_fold_job_counters()").fetchone()[0]  # type: ignore[index]
        folded += step["events"]
        if not step["more"]:
            break
    print(f"  {folded:,} events folded into the job counters", flush=True)
    return have


def timed_sql(url: str, statement: str, runs: int) -> LoadResult:
    result = LoadResult()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement).fetchall()
        began = time.perf_counter()
        for _ in range(runs):
            t = time.perf_counter()
            conn.execute(statement).fetchall()
            result.latencies.append(time.perf_counter() - t)
        result.elapsed = time.perf_counter() - began
    return result


def scrape(port: int, path: str, runs: int) -> LoadResult:
    asyncio.run(sequential("127.0.0.1", port, path, 3))  # warm-up
    result = asyncio.run(sequential("127.0.0.1", port, path, runs))
    assert set(result.statuses) == {200}, result.statuses
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--data-dir", default="/tmp/hub-bench-metrics")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with query_bench.database(args) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            query_bench.prepare(conn, args.rows, args.reuse)
            jobs = fill_jobs(conn, args.jobs)
            logs = conn.execute("SELECT count(*) FROM system_logs").fetchone()[0]  # type: ignore[index]
        print(f"data: {logs:,} log rows, {jobs:,} jobs")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ORCHESTRATOR_", "DATABASE_URL"))
        }
        hub = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--no-daemon", "--port", str(port)],
            env={
                **env,
                "DATABASE_URL": url,
                "ORCHESTRATOR_API_TOKEN": TOKEN,
                "ORCHESTRATOR_METRICS_DB_CACHE_SECONDS": "0",
                "ORCHESTRATOR_LOG_LEVEL": "WARNING",
                "ORCHESTRATOR_SECRETS_FILE": "/nonexistent/secrets.json",
            },
        )
        try:
            wait_live(port, hub)
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {TOKEN}"}

            def template(name: str) -> None:
                answer = httpx.post(
                    f"{base}/api/cloud/metrics/config/templates/{name}", headers=auth
                )
                answer.raise_for_status()

            results: dict[str, LoadResult] = {
                "/health/live": scrape(port, "/health/live", args.runs)
            }
            template("standard")
            results["/metrics, standard template"] = scrape(port, "/metrics", args.runs)
            template("full")
            results["/metrics, full template"] = scrape(port, "/metrics", args.runs)
            text = httpx.get(f"{base}/metrics").text
            results["func_ops_metrics() alone (psycopg)"] = timed_sql(
                url, "SELECT func_ops_metrics()", args.runs
            )
            results["contrast: jobs GROUP BY status"] = timed_sql(
                url, "SELECT status, count(*) FROM jobs GROUP BY 1", max(10, args.runs // 20)
            )
        finally:
            hub.terminate()
            hub.wait(30)
    floor = results["/health/live"].pct(50)
    rows = []
    for name, result in results.items():
        target = name == "/metrics, full template"
        rows.append(
            [
                name,
                len(result.latencies),
                f"{result.pct(50):.2f}",
                f"{result.pct(99):.2f}",
                f"{result.pct(50) / floor:.1f}",
                "<= 100 ms p99" if target else "",
                ("met" if result.pct(99) <= 100 else "NOT met") if target else "",
            ]
        )
    print(f"\none request at a time (ms); {jobs:,} jobs, {logs:,} log rows")
    print(
        tabulate(
            rows, headers=["path", "runs", "p50", "p99", "p50 / live p50", "target", "verdict"]
        )
    )
    sample = [
        line
        for line in text.splitlines()
        if line.startswith(("orchestrator_jobs{", "orchestrator_jobs_submitted"))
    ]
    print("scraped: " + "; ".join(sample))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
