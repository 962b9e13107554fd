"""bench/aggregates: the log aggregates over 24 hours of a 10-million-row store.

Issue 4's targets: ``func_log_statistics`` over 24 h at most 300 ms p50; the errors
summary (``func_log_errors_summary``) over 24 h at most 50 ms p50. Both read the count
rollups (sql/functions/logs/rollups.sql); each is timed against baselines measured in
the same run:

* ``SELECT 1`` -- one round trip, the floor of any call;
* the raw aggregate -- the same function as it was before the rollups (its text is
  taken from 0.1's migration that defined it, kept in tests/fixtures/legacy_sql, and
  created under a ``bench_raw_`` name in the bench's own database),
  so the speed-up is measured on the same data, server and moment; its result must
  equal the rollup-backed one (checked and printed).

The data set is bench/query.py's (its generator, not a second one): N rows (default
10,000,000) over 3 days, 200 workers, 50,000 tasks, generated in ``--data-dir`` with the
rollup trigger off, then counted into the rollups in one rebuild (the backfill a
database upgraded from before the rollups gets; its duration is printed); a data dir
that already holds N rows is reused. The window is the
data's last 24 hours, ending at a time with seconds and microseconds, so both edges are
partial minutes and partial hours.

    python bench/aggregates.py [--rows N] [--runs K] [--data-dir DIR] [--generate-only]
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
from query import generate  # bench/ is the script's directory: the query bench's data
from rollups import set_rollups
from tabulate import tabulate

from orchestrator.db.embedded import start_embedded
from orchestrator.db.migrate import migrate

LEGACY_SQL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "legacy_sql"


def create_raw_baseline(conn: psycopg.Connection[Any], migration: str, *functions: str) -> str:
    """Creates, each under the name ``bench_raw_<function>``, the functions as the given
    0.1 migration file defined them (before the rollups replaced them), calling each
    other by their new names; returns the name of the first."""
    text = (LEGACY_SQL / migration).read_text()
    for function in functions:
        found = re.search(
            rf"CREATE OR REPLACE FUNCTION public\.{function}\(.*?\n\$\$;\n", text, re.DOTALL
        )
        assert found, f"{function} not found in {migration}"
        definition = found.group(0)
        for name in functions:
            definition = definition.replace(f"public.{name}(", f"public.bench_raw_{name}(")
        conn.execute(definition)
    return f"bench_raw_{functions[0]}"


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


def bench(conn: psycopg.Connection[Any], repeats: int) -> list[list[Any]]:
    newest = scalar(conn, 'SELECT max("timestamp") FROM system_logs')
    until = newest - timedelta(minutes=7, seconds=13.4567)  # inside a minute and an hour
    since = until - timedelta(hours=24)
    table: list[list[Any]] = []
    floor, _ = timed(lambda: conn.execute("SELECT 1").fetchone(), repeats)
    table.append(["SELECT 1 (round trip)", floor, 1, ""])
    cases = [
        ("func_log_statistics 24 h", "0003_log_functions.sql", ("func_log_statistics",)),
        (
            "func_log_errors_summary 24 h",
            "0006_log_queries.sql",
            ("func_log_errors_summary", "func_log_errors_summary_statement"),
        ),
    ]
    for label, migration, functions in cases:
        function = functions[0]
        raw = create_raw_baseline(conn, migration, *functions)
        raw_times, raw_result = timed(
            lambda r=raw: call(conn, r, since, until), max(3, repeats // 4)
        )
        new_times, new_result = timed(lambda f=function: call(conn, f, since, until), repeats)
        same = "yes" if raw_result == new_result else "NO"
        raw_p50 = statistics.median(raw_times)
        table.append([f"{label}: raw rows (before)", raw_times, raw_p50, ""])
        table.append([f"{label}: rollups (now)", new_times, raw_p50, same])
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


def prepare(conn: psycopg.Connection[Any], rows: int) -> None:
    """Migrates, and generates the data set unless the database holds ``rows`` log rows
    already: with the rollup trigger off, then counted into the rollups in one rebuild."""
    migrate(conn)
    if scalar(conn, "SELECT count(*) FROM public.system_logs") == rows:
        return
    generate_without_rollups(conn, rows)
    started = time.perf_counter()
    conn.execute(
        'SELECT hub_internal.func_log_rollups_rebuild(min("timestamp"),'
        " max(\"timestamp\") + interval '1 microsecond') FROM public.system_logs"
    )
    conn.execute("ANALYZE public.system_log_counts, public.system_log_error_counts")
    print(f"rollups rebuilt (the backfill) in {time.perf_counter() - started:.1f} s")


def generate_without_rollups(conn: psycopg.Connection[Any], rows: int) -> None:
    """A store as it was before the rollups: the log rows, nothing counted."""
    conn.execute(
        "TRUNCATE public.system_logs, public.system_log_counts, public.system_log_error_counts"
    )
    set_rollups(conn, "off")
    try:
        print(f"generating {rows:,} rows ...", flush=True)
        print(f"generated in {generate(conn, rows):.0f} s", flush=True)
    finally:
        set_rollups(conn, "on")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/hub-bench-aggregates"))
    parser.add_argument(
        "--generate-only", action="store_true", help="stop after generating (nothing counted)"
    )
    args = parser.parse_args()
    server = start_embedded(args.data_dir / "pgdata")
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            if args.generate_only:
                migrate(conn)
                generate_without_rollups(conn, args.rows)
                return
            prepare(conn, args.rows)
            version = scalar(conn, "SELECT current_setting('server_version')")
            sizes = conn.execute(
                "SELECT (SELECT count(*) FROM system_logs),"
                " (SELECT count(*) FROM system_log_counts WHERE resolution = 'minute'),"
                " (SELECT count(*) FROM system_log_counts WHERE resolution = 'hour'),"
                " (SELECT count(*) FROM system_log_error_counts)"
            ).fetchone()
            assert sizes is not None
            print(
                f"PostgreSQL {version}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC;"
                f" {sizes[0]:,} log rows (bench/query.py's data set); rollup rows:"
                f" {sizes[1]:,} minute, {sizes[2]:,} hour, {sizes[3]:,} error messages\n"
            )
            report(bench(conn, args.runs))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
