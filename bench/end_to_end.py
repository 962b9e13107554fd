"""From ``logger.info()`` to committed rows: throughput, the sink against COPY, and memory
during an outage. All in one run, against one server.

Questions (issue 3), each answered in the printed tables:
1. ceiling — ``psql \\copy`` of N handler-shaped rows into ``system_logs``: the most the
   table and its indexes take;
2. sink — ``PostgresSink.send`` (the handler's own path: binary COPY straight into the
   table for a clean batch) with 1,000-row batches; target >= 70 % of 1. Twice: 200
   sources in every batch (the worst case for the rollups) and one source per batch
   (what a handler or a heartbeat sends); each again without the rollup trigger and
   (the first) without the trigram index, in this scratch database only, to state
   their costs as same-run ratios (issue 20: the trigger at most 15 %);
3. end to end — a ``DatabaseLogHandler`` at default settings, fed by ``logger.info()``
   at paced rates for a few seconds each (and once as fast as one thread can), then
   flushed: the rate asked, the rate the caller achieved (a healthy sink slows a caller
   that outruns it instead of dropping), rows committed per second counted from the
   table (first call to last commit), and drops. Target (issue 20): zero drops at an
   offered rate of at least 0.8x the ceiling of 1, with the ratio printed;
4. outage — the database unreachable for ``--outage-seconds`` (default 60) while the
   program logs 10,000 records/s: peak resident memory must stay bounded, drops counted.

Run: flock /tmp/hub-bench.lock python bench/end_to_end.py [--database-url URL] [--rows N]
     [--outage-seconds S] [--rollups on|off]   (off: without the count-rollup trigger of
     sql/functions/logs/rollups.sql, to A/B it)
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
from rollups import set_rollups  # bench/ is the script's directory
from tabulate import tabulate

from orchestrator.db import migrate
from orchestrator.db.embedded import _pgserver, start_embedded
from orchestrator.db.log_copy import DIRECT_COLUMNS, STAGE_COLUMNS
from orchestrator.logs.levels import SEVERITY
from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.postgres import PostgresSink


@contextmanager
def scratch_database(url: str | None) -> Iterator[tuple[str, str]]:
    """(URL of a migrated scratch database, psql binary) on the given or embedded server."""
    if url:
        name = f"bench_e2e_{os.getpid()}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        target = url.rsplit("/", 1)[0] + "/" + name
        with psycopg.connect(target, autocommit=True) as conn:
            migrate.migrate(conn)
        try:
            yield target, "psql"
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = start_embedded(Path(tmp) / "pg")
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                migrate.migrate(conn)
            yield server.url, str(Path(_pgserver()._commands.POSTGRES_BIN_PATH) / "psql")
        finally:
            server.stop()


def entries(n: int) -> list[dict[str, Any]]:
    """Handler-shaped entries, as ``snapshot.to_entry`` makes them (recent timestamps)."""
    now = time.time()
    workers = [f"gpu-{i:03d}" for i in range(200)]
    tasks = [str(uuid.uuid4()) for _ in range(5000)]
    return [
        {
            "id": str(uuid.uuid4()),
            "timestamp": now - 60 + i * 1e-5,
            "source_type": "worker",
            "source_id": workers[i % 200],
            "log_level": "INFO" if i % 50 else "WARNING",
            "logger_name": "worker.runtime",
            "message": f"Generation progress {i % 100}% on frame {i}",
            "task_id": tasks[i % 5000],
            "worker_id": workers[i % 200],
            "cycle_number": i // 1000,
            "correlation_id": None,
            "exception": None,
            "metadata": {"vram_gb": 40 + i % 40},
        }
        for i in range(n)
    ]


def truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE system_logs, system_log_counts, system_log_error_counts")
        conn.execute("CHECKPOINT")


def ceiling(url: str, psql: str, rows: list[dict[str, Any]]) -> float:
    """Seconds for psql's \\copy of the rows (the table's own ceiling)."""
    columns = [c for c in DIRECT_COLUMNS if c not in ("correlation_id", "exception")]
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
        writer = csv.writer(f)
        for e in rows:
            writer.writerow(
                [
                    e["id"],
                    datetime.fromtimestamp(e["timestamp"], UTC).isoformat(),
                    e["source_type"],
                    e["source_id"],
                    e["log_level"],
                    SEVERITY[e["log_level"]],
                    e["logger_name"],
                    e["message"],
                    e["task_id"],
                    e["worker_id"],
                    e["cycle_number"],
                    '{"vram_gb": 1}',
                ]
            )
        path = f.name
    truncate(url)
    started = time.perf_counter()
    subprocess.run(
        [
            psql,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            f"\\copy system_logs ({', '.join(columns)}) FROM '{path}' WITH (FORMAT csv)",
        ],
        check=True,
    )
    elapsed = time.perf_counter() - started
    os.unlink(path)
    return elapsed


def sink_seconds(url: str, rows: list[dict[str, Any]], batch: int = 1000) -> float:
    """Seconds for PostgresSink.send of the rows in batches (the handler's path)."""
    truncate(url)
    sink = PostgresSink(url)
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        result = sink.send(rows[i : i + batch])
        assert result.inserted == len(rows[i : i + batch]), result
    elapsed = time.perf_counter() - started
    sink.close()
    return elapsed


def paced(url: str, rate: int, seconds: float) -> dict[str, Any]:
    """logger.info() at ``rate``/s (0: as fast as it goes) for ``seconds`` through a
    default handler, then flush; rows stored are counted from the table."""
    truncate(url)
    handler = DatabaseLogHandler(sink=lambda: PostgresSink(url), source_id="e2e")
    logger = logging.Logger("bench.e2e")
    logger.addHandler(handler)
    tick = 0.01
    unpaced = rate == 0
    rate = rate or 10**9
    per_tick = 1000 if unpaced else max(1, int(rate * tick))
    total = int(seconds * 50_000) if unpaced else int(rate * seconds)
    started = time.perf_counter()
    sent = 0
    while sent < total:
        for _ in range(min(per_tick, total - sent)):
            logger.info("Generation progress %d%% on frame %d", sent % 100, sent)
            sent += 1
        lag = started + sent / rate - time.perf_counter()
        if lag > 0 and not unpaced:
            time.sleep(lag)
    logging_done = time.perf_counter()
    delivered_all = handler.flush(120)
    elapsed = time.perf_counter() - started
    stats = handler.stats()
    handler.close()
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM system_logs WHERE source_id = 'e2e'").fetchone()
    assert stored is not None
    return {
        "rate": "max" if unpaced else rate,
        "records": total,
        "seconds": elapsed,
        "logging": logging_done - started,
        "achieved": total / (logging_done - started),
        "stored": stored[0],
        "per_s": stored[0] / elapsed,
        "dropped": sum(stats["dropped"].values()),
        "ok": delivered_all and stored[0] == total,
    }


def outage(seconds: float, rate: int) -> dict[str, Any]:
    """Peak RSS while logging ``rate``/s to an unreachable database for ``seconds``."""
    process = psutil.Process()
    handler = DatabaseLogHandler(
        sink=lambda: PostgresSink("postgresql://x@127.0.0.1:1/x"),
        source_id="outage",
        max_backoff=1.0,
    )
    logger = logging.Logger("bench.outage")
    logger.addHandler(handler)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(process.memory_info().rss)
            stop.wait(0.25)

    base = process.memory_info().rss
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        for _ in range(rate // 100):
            logger.info("still logging during the outage, record %d", sent)
            sent += 1
        lag = started + sent / rate - time.perf_counter()
        if lag > 0:
            time.sleep(lag)
    stop.set()
    sampler.join()
    stats = handler.stats()
    handler.close(timeout=0.5)
    return {
        "records": sent,
        "base_mb": base / 2**20,
        "peak_mb": max(samples) / 2**20,
        "last_mb": samples[-1] / 2**20,
        "queue": stats["queue_depth"],
        "dropped": stats["dropped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an embedded server in a temp dir")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per paced rate")
    parser.add_argument(
        "--rates", default="5000,10000,20000,30000,50000,0", help="0: as fast as it goes"
    )
    parser.add_argument("--outage-seconds", type=float, default=60.0)
    parser.add_argument("--outage-rate", type=int, default=10_000)
    parser.add_argument("--rollups", choices=("on", "off"), default="on")
    args = parser.parse_args()
    assert STAGE_COLUMNS  # the sink's staging layout is what we measure
    with scratch_database(args.database_url) as (url, psql):
        with psycopg.connect(url, autocommit=True) as conn:
            set_rollups(conn, args.rollups)
            version = conn.execute("SHOW server_version").fetchone()[0]
            trigram = conn.execute(
                "SELECT to_regclass('system_logs_message_trgm_idx') IS NOT NULL"
            ).fetchone()[0]
        rows = entries(args.rows)
        a = ceiling(url, psql, rows)
        c = sink_seconds(url, rows)
        # A handler or a heartbeat sends one source's records per batch; the mix above
        # has 200 sources in every batch, the worst case for the rollups (one upsert per
        # source, level and bucket). The same rows, one source per batch:
        by_source = sorted(rows, key=lambda e: e["source_id"])
        c_one = sink_seconds(url, by_source)
        # The costs of the trigger and of the trigram index, same run, this scratch
        # database only: the sink again without each.
        with psycopg.connect(url, autocommit=True) as conn:
            set_rollups(conn, "off")
        c_no_rollups = sink_seconds(url, rows)
        c_one_no_rollups = sink_seconds(url, by_source)
        with psycopg.connect(url, autocommit=True) as conn:
            set_rollups(conn, args.rollups)
            conn.execute("DROP INDEX IF EXISTS system_logs_message_trgm_idx")
        c_no_trigram = sink_seconds(url, rows) if trigram else None
        if trigram:
            with psycopg.connect(url, autocommit=True) as conn:
                schema = conn.execute(
                    "SELECT n.nspname FROM pg_opclass o JOIN pg_namespace n"
                    " ON n.oid = o.opcnamespace WHERE o.opcname = 'gin_trgm_ops'"
                ).fetchone()
                assert schema is not None
                conn.execute(
                    f"CREATE INDEX system_logs_message_trgm_idx ON system_logs"  # type: ignore[arg-type]
                    f" USING gin (message {schema[0]}.gin_trgm_ops)"
                )
        print(
            f"PostgreSQL {version}; trigram index: {trigram}; "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; rollup trigger: {args.rollups}"
        )
        print(
            tabulate(
                [
                    (
                        "psql \\copy (ceiling)",
                        args.rows,
                        f"{a:.2f}",
                        f"{args.rows / a:,.0f}",
                        "100%",
                    ),
                    (
                        "PostgresSink.send x1000, 200 sources per batch",
                        args.rows,
                        f"{c:.2f}",
                        f"{args.rows / c:,.0f}",
                        f"{a / c:.0%}",
                    ),
                    (
                        "  the same without the rollup trigger",
                        args.rows,
                        f"{c_no_rollups:.2f}",
                        f"{args.rows / c_no_rollups:,.0f}",
                        f"{a / c_no_rollups:.0%} (trigger costs {1 - c_no_rollups / c:.0%})",
                    ),
                    (
                        "PostgresSink.send x1000, one source per batch",
                        args.rows,
                        f"{c_one:.2f}",
                        f"{args.rows / c_one:,.0f}",
                        f"{a / c_one:.0%}",
                    ),
                    (
                        "  the same without the rollup trigger",
                        args.rows,
                        f"{c_one_no_rollups:.2f}",
                        f"{args.rows / c_one_no_rollups:,.0f}",
                        f"{a / c_one_no_rollups:.0%}"
                        f" (trigger costs {1 - c_one_no_rollups / c_one:.0%})",
                    ),
                    (
                        "  the 200-source mix without the trigram index",
                        args.rows,
                        f"{c_no_trigram:.2f}" if c_no_trigram else "-",
                        f"{args.rows / c_no_trigram:,.0f}" if c_no_trigram else "-",
                        f"{a / c_no_trigram:.0%} (index costs {1 - c_no_trigram / c:.0%})"
                        if c_no_trigram
                        else "no pg_trgm here",
                    ),
                ],
                headers=["path", "rows", "seconds", "rows/s", "ratio of ceiling"],
            )
        )
        print()
        results = [paced(url, int(r), args.seconds) for r in args.rates.split(",")]
        ceiling_rate = args.rows / a
        print(
            tabulate(
                [
                    (
                        r["rate"],
                        f"{r['achieved']:,.0f}",
                        f"{r['achieved'] / ceiling_rate:.2f}x",
                        r["records"],
                        r["stored"],
                        f"{r['seconds']:.2f}",
                        f"{r['per_s']:,.0f}",
                        f"{r['per_s'] / ceiling_rate:.2f}x",
                        r["dropped"],
                        "yes" if r["ok"] else "NO",
                    )
                    for r in results
                ],
                headers=[
                    "asked/s",
                    "offered/s",
                    "of ceiling",
                    "records",
                    "rows stored",
                    "to last commit s",
                    "committed rows/s",
                    "of ceiling",
                    "dropped",
                    "all stored",
                ],
                disable_numparse=True,
            )
        )
        print()
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    o = outage(args.outage_seconds, args.outage_rate)
    print(
        f"outage: {o['records']:,} records at {args.outage_rate:,}/s for "
        f"{args.outage_seconds:.0f} s; RSS {o['base_mb']:.1f} MB before, "
        f"peak {o['peak_mb']:.1f} MB, "
        f"last {o['last_mb']:.1f} MB; queue {o['queue']:,}; dropped {o['dropped']}"
    )


if __name__ == "__main__":
    main()
