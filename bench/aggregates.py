"""bench/aggregates: the log aggregates over 24 hours of a 10-million-row store.

Issue 4's targets: ``func_log_statistics`` over 24 h at most 300 ms p50; the errors
summary over 24 h at most 50 ms p50. Both now read the count rollups of sql/0007; each
is timed against baselines measured in the same run:

* ``SELECT 1`` — one round trip, the floor of any call;
* the raw aggregate — the same function as it was before the rollups (its text is
  taken from the migration that defined it and created under a ``bench_raw_`` name),
  so the speed-up is measured on the same data, server and moment; its result must
  equal the rollup-backed one (checked, printed).

The window is the data set's last 24 hours, ending at a time with seconds and
microseconds, so both edges are partial minutes. The data set (bench/logdata.py) is
generated once into ``--data-dir`` and reused while its parameters stay the same.

    python bench/aggregates.py [--rows N] [--repeats R] [--data-dir DIR] [--database-url URL]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from logdata import Dataset, ensure_dataset  # bench/ is the script's directory
from tabulate import tabulate

from orchestrator.db.embedded import start_embedded
from orchestrator.db.migrate import migrate

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def create_raw_baseline(conn: psycopg.Connection[Any], migration: str, function: str) -> str:
    """Creates, under the name ``bench_raw_<function>``, the function as the given
    migration file defined it (before the rollups replaced it); returns that name."""
    text = (SQL_DIR / migration).read_text()
    found = re.search(
        rf"CREATE OR REPLACE FUNCTION public\.{function}\(.*?\n\$\$;\n", text, re.DOTALL
    )
    assert found, f"{function} not found in sql/{migration}"
    raw = f"bench_raw_{function}"
    conn.execute(found.group(0).replace(f"public.{function}(", f"public.{raw}(", 1))
    return raw


def timed(run: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Milliseconds of each of ``repeats`` calls after one warm-up call; the last result."""
    result = run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def call(conn: psycopg.Connection[Any], function: str, since: datetime, until: datetime) -> Any:
    row = conn.execute(f"SELECT public.{function}(%s, %s)", [since, until]).fetchone()
    return row[0] if row else None


def scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()  # type: ignore[arg-type]  # trusted bench SQL
    return row[0] if row else None


def bench(conn: psycopg.Connection[Any], dataset: Dataset, repeats: int) -> list[list[Any]]:
    until = dataset.until - timedelta(minutes=7, seconds=13.4567)  # partial minutes
    since = until - timedelta(hours=24)
    table: list[list[Any]] = []
    floor, _ = timed(lambda: conn.execute("SELECT 1").fetchone(), repeats)
    table.append(["SELECT 1 (round trip)", floor, 1, ""])
    cases = [("func_log_statistics 24 h", "0003_log_functions.sql", "func_log_statistics")]
    for label, migration, function in cases:
        raw = create_raw_baseline(conn, migration, function)
        raw_times, raw_result = timed(
            lambda r=raw: call(conn, r, since, until), max(3, repeats // 4)
        )
        new_times, new_result = timed(lambda f=function: call(conn, f, since, until), repeats)
        same = "yes" if raw_result == new_result else "NO"
        table.append([f"{label}: raw rows (before)", raw_times, statistics.median(raw_times), ""])
        table.append([f"{label}: rollups (now)", new_times, statistics.median(raw_times), same])
    return table


def report(table: list[list[Any]]) -> None:
    rows = []
    for label, times, raw_p50, same in table:
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
        speedup = f"{raw_p50 / p50:,.1f}x" if same else ""
        rows.append([label, len(times), f"{p50:,.1f}", f"{p95:,.1f}", speedup, same])
    headers = ["query", "calls", "p50 ms", "p95 ms", "raw p50 / p50", "same result"]
    align = ("left", "right", "right", "right", "right", "left")
    print(tabulate(rows, headers, colalign=align, disable_numparse=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/hub-bench-aggregates"))
    parser.add_argument("--database-url", help="use this database instead of the embedded one")
    args = parser.parse_args()
    server = None
    url = args.database_url
    if url is None:
        server = start_embedded(args.data_dir / "pgdata")
        url = server.url
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            started = time.perf_counter()
            dataset, made = ensure_dataset(conn, args.rows, args.days, args.workers, args.tasks)
            took = f"generated in {time.perf_counter() - started:,.0f} s" if made else "reused"
            version = scalar(conn, "SELECT current_setting('server_version')")
            sizes = conn.execute(
                "SELECT (SELECT count(*) FROM system_logs),"
                " (SELECT count(*) FROM system_log_counts WHERE resolution = 'minute'),"
                " (SELECT count(*) FROM system_log_counts WHERE resolution = 'hour'),"
                " (SELECT count(*) FROM system_log_error_counts)"
            ).fetchone()
            assert sizes is not None
            print(
                f"PostgreSQL {version}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; data set {took}:"
                f" {sizes[0]:,} log rows over {dataset.days} days, {dataset.workers} workers,"
                f" {dataset.tasks:,} tasks; rollup rows: {sizes[1]:,} minute, {sizes[2]:,}"
                f" hour, {sizes[3]:,} error\n"
            )
            report(bench(conn, dataset, args.repeats))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
