"""Capacity on paper from measurements: what one process ships, what one database takes.

Issue 20, item 5: README "Capacity and scale-out" quotes this table. In one run, against
one server, into one scratch database with the table as shipped (trigram index where
``pg_trgm`` exists, the rollup trigger):

* ``psql \\copy`` of the same rows: the table's ceiling (the baseline of the ratios);
* 1, 2 and 4 processes at once, each logging as fast as one thread can through a
  ``DatabaseLogHandler`` at default settings, then flushing: rows committed per second,
  counted from the table (first call of the first process to the last commit of the
  last), and the drops each reports.

On a 2-core machine the processes share the cores with the server, so more processes
mostly show where the server saturates. Workers ship on their heartbeat instead (one
call per beat), so their rate is bounded by the same server cost per row.

Run: flock /tmp/hub-bench.lock python bench/capacity.py [--database-url URL]
     [--records N] [--processes 1,2,4]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from end_to_end import (
    ceiling,
    entries,
    scratch_database,
    truncate,
)  # bench/ is the script's directory
from tabulate import tabulate

from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.postgres import PostgresSink


def one_process(url: str, records: int, start: Any, results: Any) -> None:
    """Logs ``records`` as fast as it can once ``start`` is set; puts its drop count."""
    handler = DatabaseLogHandler(sink=lambda: PostgresSink(url), source_id=f"cap-{os.getpid()}")
    logger = logging.Logger("bench.capacity")
    logger.addHandler(handler)
    start.wait()
    for i in range(records):
        logger.info("Generation progress %d%% on frame %d", i % 100, i)
    handler.flush(300)
    results.put(sum(handler.stats()["dropped"].values()))
    handler.close()


def run(url: str, processes: int, records: int) -> tuple[float, int, int]:
    """(seconds to the last commit, rows stored, records dropped) for ``processes``."""
    truncate(url)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    children = [
        context.Process(target=one_process, args=(url, records, start, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    time.sleep(2.0)  # every child imported and connected
    began = time.perf_counter()
    start.set()
    drops = sum(results.get(timeout=600) for _ in children)
    elapsed = time.perf_counter() - began
    for child in children:
        child.join()
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM system_logs").fetchone()
    assert stored is not None
    return elapsed, int(stored[0]), drops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an embedded server in a temp dir")
    parser.add_argument("--records", type=int, default=100_000, help="per process")
    parser.add_argument("--processes", default="1,2,4")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with scratch_database(args.database_url) as (url, psql):
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            trigram = conn.execute(
                "SELECT to_regclass('system_logs_message_trgm_idx') IS NOT NULL"
            ).fetchone()
        assert version is not None and trigram is not None
        copy_seconds = ceiling(url, psql, entries(args.records))
        copy_rate = args.records / copy_seconds
        table = [("psql \\copy (ceiling)", 1, f"{copy_rate:,.0f}", "1.00x", "", "")]
        for n in (int(p) for p in args.processes.split(",")):
            seconds, stored, drops = run(url, n, args.records)
            rate = stored / seconds
            table.append(
                (
                    "DatabaseLogHandler, unpaced",
                    n,
                    f"{rate:,.0f}",
                    f"{rate / copy_rate:.2f}x",
                    f"{stored:,} of {n * args.records:,}",
                    drops,
                )
            )
    print(
        f"PostgreSQL {version[0]}; trigram index: {trigram[0]}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(
        tabulate(
            table,
            headers=["path", "processes", "committed rows/s", "of ceiling", "stored", "dropped"],
            disable_numparse=True,
        )
    )


if __name__ == "__main__":
    main()
