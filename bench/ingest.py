"""bench/ingest: how fast can log rows get into ``system_logs``, and how cheap is retention?

Issue 2 asks for one run over N (default 1,000,000) generated rows, same table and
indexes for every path, each reported as rows/s and as a ratio of (a):

(a)  ``\\copy ... FROM file (FORMAT csv)`` through psql, one statement: the ceiling.
(b)  ``func_insert_logs_batch(json)`` in batches of 50 and 500: the RPC contract that
     supabase-py and the SQL editor use (validation + ON CONFLICT DO NOTHING).
(s)  the seed's design as a peer: a plpgsql loop over the entries with an exception
     block (a subtransaction) per row, batches of 50, created under a bench_ name in
     the bench's own scratch database (same table, indexes and trigger).
(c)  the direct paths the Python log handler could use, chunks of 500 (what the handler
     ships) and 5000 (the trend): c1 binary COPY straight into the table (no dedup: the
     Python ceiling); c2 binary COPY into an ON COMMIT DROP temp table, then INSERT ...
     SELECT ... ON CONFLICT DO NOTHING (idempotent, pooler-safe); c3 INSERT ... SELECT
     FROM unnest(binary arrays) ON CONFLICT DO NOTHING (idempotent, one statement).
(d)  retention: ``func_cleanup_old_logs`` dropping one day's partition holding N/4 and N
     rows (should be flat) versus a DELETE of the same rows (plus its VACUUM, as info).

Rows are generated once, deterministically (seeded), inside the current UTC day or the
one before, so they land in real daily partitions. Every path starts from a TRUNCATEd
table and a CHECKPOINT; only the insert itself is timed, including the Python-side
conversion of the in-memory rows to what each path is given: JSON text for (b) and (s),
COPY/array encoding for (c1-c3), the handler's entries (then its own encoding) for c4
and c5. A fresh database is created per run and dropped at the end.

    python bench/ingest.py [--database-url URL] [--rows N] [--rollups on|off]

``--rollups off`` disables the count-rollup trigger of sql/functions/logs/rollups.sql, so that its
cost on every path is the difference between two runs.

Without --database-url the embedded server (pgserver) is started in a temp directory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from rollups import set_rollups  # bench/ is the script's directory
from tabulate import tabulate

from orchestrator.db.embedded import start_embedded
from orchestrator.db.migrate import migrate
from orchestrator.db.psycopg import connect
from orchestrator.logs.levels import SEVERITY
from orchestrator.logs.sinks.postgres import PostgresSink

Row = tuple[Any, ...]
# Columns (in the order of the generated tuples, the CSV file and every COPY) and types.
SCHEMA = (
    "id uuid, timestamp timestamptz, source_type text, source_id text, worker_id text,"
    " logger_name text, log_level text, severity_number smallint, message text, task_id uuid,"
    " cycle_number integer, metadata jsonb"
)
COLUMNS, TYPES = zip(*(column.split() for column in SCHEMA.split(", ")), strict=True)
COLS = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
MESSAGES = {
    "DEBUG": [
        "Heartbeat from {w}: gpu_util={0}% mem={1} MiB temp={2}C fan={3}%",
        "Fetched batch {0} of {1} for task {t} ({2} items, {3} ms)",
        "Cache lookup for key model/{m}/shard-{0}: {hit}",
    ],
    "INFO": [
        "Task {t} started on {w} (batch size {0}, model {m})",
        "Processed {0} items in {1} ms ({2} items/s) for cycle {3}",
        "Cycle {3}: assigned {0} tasks to {1} workers, queue depth {2}",
        "Checkpoint saved to s3://runs/{m}/step-{0}.pt ({1} MB in {2} ms)",
    ],
    "WARNING": [
        "Retrying request to api-{0}.internal after timeout (attempt {1}/5)",
        "GPU {2} temperature {0}C above threshold on {w}; throttling",
    ],
    "ERROR": [
        "Task {t} failed: CUDA out of memory allocating {0} MiB on {w}",
        "Worker {w} lost heartbeat for {0} s; requeueing {1} tasks",
    ],
}
MODELS = ["llama-3-8b", "mistral-7b", "sdxl-base", "whisper-large-v3", "bert-base"]
HITS = ["hit", "miss", "stale"]
ORCHESTRATOR = ("orchestrator_gpu", "orchestrator-0", None, "orchestrator.scheduler")


def uuid7(ms: int, rng: random.Random) -> uuid.UUID:
    """UUID version 7: 48-bit Unix milliseconds, version, 12+62 random bits, variant."""
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64
    return uuid.UUID(int=value | 0b10 << 62 | rng.getrandbits(62))


def generate(n: int, end: datetime, seed: int = 2) -> list[Row]:
    """N time-ordered log rows over the 6 hours before ``end`` (tuples in COLUMNS order)."""
    rng = random.Random(seed)
    tasks = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(50_000)]
    workers = [f"gpu-worker-{i:03d}" for i in range(200)]
    start_ms, span_ms = int(end.timestamp() * 1000) - 6 * 3_600_000, 6 * 3_600_000 - 1000
    levels = rng.choices(["DEBUG", "INFO", "WARNING", "ERROR"], [38, 58, 3, 1], k=n)
    rows: list[Row] = []
    for i, level in enumerate(levels):
        ms = start_ms + i * span_ms // n + rng.randrange(200)
        worker = rng.choice(workers)
        task = rng.choice(tasks) if rng.random() < 0.85 else None
        cycle = 1 + i * 5000 // n
        numbers = (rng.randrange(1, 10**k) for k in (rng.randint(1, 5), 4, 3, 5))
        message = rng.choice(MESSAGES[level]).format(
            *numbers, w=worker, t=task or "-", m=rng.choice(MODELS), hit=rng.choice(HITS)
        )
        meta: dict[str, Any] = {"gpu": rng.randrange(8), "duration_ms": rng.randrange(5000)}
        if level in ("WARNING", "ERROR"):
            meta["attempt"] = rng.randint(1, 5)
        # A quarter from the orchestrator itself (no worker), the rest from the workers.
        src = ORCHESTRATOR if rng.random() < 0.25 else ("worker", worker, worker, "worker.runner")
        ts = datetime.fromtimestamp(ms / 1000, UTC)
        rows.append((uuid7(ms, rng), ts, *src, level, SEVERITY[level], message, task, cycle, meta))
    return rows


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        for r in rows:
            out.writerow((*r[:11], json.dumps(r[11])))


def chunks(rows: Sequence[Row], size: int) -> Iterator[Sequence[Row]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def copy_rows(conn: psycopg.Connection[Any], table: sql.Composable, rows: Sequence[Row]) -> None:
    """One binary COPY of ``rows`` into ``table``."""
    query = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, COLS)
    with conn.cursor() as cur, cur.copy(query) as copy:
        copy.set_types(TYPES)
        for row in rows:
            copy.write_row(row)


LOGS = sql.SQL("public.system_logs")


def insert_a(db: Db, rows: Sequence[Row]) -> int:
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    command = rf"\copy public.system_logs ({cols}) FROM '{db.csv_path}' WITH (FORMAT csv)"
    subprocess.run(
        [db.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.conninfo, "-c", command], check=True
    )
    return len(rows)


def entry(r: Row) -> dict[str, Any]:
    """A row as func_insert_logs_batch takes it: a JSON object, ids and times as text."""
    e = dict(zip(COLUMNS, r, strict=True), id=str(r[0]), timestamp=r[1].isoformat())
    e["task_id"] = r[9] and str(r[9])
    del e["severity_number"]  # the function derives it from the level
    return e


def insert_b(db: Db, chunk: Sequence[Row]) -> int:
    batch = json.dumps([entry(r) for r in chunk])
    res = db.conn.execute("SELECT public.func_insert_logs_batch(%s::json)", [batch]).fetchone()
    assert res is not None and res[0]["success"] and not res[0]["rejected"], res
    return int(res[0]["inserted"])


# The seed's insert function, shape for shape: one INSERT per entry, each in its own
# exception block (a subtransaction), bad rows only counted.
SEED_FUNCTION = """
CREATE OR REPLACE FUNCTION public.bench_seed_insert_logs_batch(logs jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    v_inserted integer := 0;
    v_errors integer := 0;
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(logs) LOOP
        BEGIN
            INSERT INTO public.system_logs (id, "timestamp", source_type, source_id, worker_id,
                logger_name, log_level, severity_number, message, task_id, cycle_number, metadata)
            VALUES ((e->>'id')::uuid, (e->>'timestamp')::timestamptz, e->>'source_type',
                e->>'source_id', e->>'worker_id', e->>'logger_name', e->>'log_level',
                CASE e->>'log_level' WHEN 'DEBUG' THEN 5 WHEN 'INFO' THEN 9
                     WHEN 'WARNING' THEN 13 WHEN 'ERROR' THEN 17 ELSE 21 END,
                e->>'message', (e->>'task_id')::uuid, (e->>'cycle_number')::integer,
                coalesce(e->'metadata', '{}'::jsonb));
            v_inserted := v_inserted + 1;
        EXCEPTION WHEN OTHERS THEN
            v_errors := v_errors + 1;
        END;
    END LOOP;
    RETURN jsonb_build_object('success', true, 'inserted', v_inserted, 'errors', v_errors);
END;
$$;
"""


def insert_seed(db: Db, chunk: Sequence[Row]) -> int:
    batch = json.dumps([entry(r) for r in chunk])
    res = db.conn.execute(
        "SELECT public.bench_seed_insert_logs_batch(%s::jsonb)", [batch]
    ).fetchone()
    assert res is not None and res[0]["errors"] == 0, res
    return int(res[0]["inserted"])


def insert_c1(db: Db, chunk: Sequence[Row]) -> int:
    copy_rows(db.conn, LOGS, chunk)
    return len(chunk)


STAGE = sql.SQL(f"CREATE TEMP TABLE log_stage ({SCHEMA}) ON COMMIT DROP")
FROM_STAGE = sql.SQL(
    "INSERT INTO public.system_logs ({0}) SELECT {0} FROM log_stage ON CONFLICT DO NOTHING"
).format(COLS)


def insert_c2(db: Db, chunk: Sequence[Row]) -> int:
    with db.conn.transaction():
        db.conn.execute(STAGE)
        copy_rows(db.conn, sql.Identifier("log_stage"), chunk)
        return db.conn.execute(FROM_STAGE).rowcount


UNNEST = sql.SQL(
    "INSERT INTO public.system_logs ({}) SELECT * FROM unnest({}) ON CONFLICT DO NOTHING"
).format(COLS, sql.SQL(", ").join(sql.SQL(f"%b::{t}[]") for t in TYPES))


def insert_c3(db: Db, chunk: Sequence[Row]) -> int:
    cols = [list(col) for col in zip(*chunk, strict=True)]
    cols[11] = [Jsonb(m) for m in cols[11]]
    return db.conn.execute(UNNEST, cols).rowcount


def handler_entries(chunk: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows as the log handler's entries (snapshot.to_entry): epoch-float time, text ids."""
    out = []
    for r in chunk:
        e = dict(zip(COLUMNS, r, strict=True), id=str(r[0]), timestamp=r[1].timestamp())
        e["task_id"] = r[9] and str(r[9])
        e["correlation_id"] = e["exception"] = None
        del e["severity_number"]
        out.append(e)
    return out


def insert_c4(db: Db, chunk: Sequence[Row]) -> int:
    """The handler's sink as it runs: direct binary COPY for a clean batch."""
    return db.sink.send(handler_entries(chunk)).inserted


def insert_c5(db: Db, chunk: Sequence[Row]) -> int:
    """The sink's staged path (retries, batches needing repairs): COPY into the staging
    table, then func_insert_staged_logs()."""
    return db.sink.send_staged(handler_entries(chunk)).inserted


class Db:
    """The bench database: its connection, psql and the CSV file of (a)."""

    def __init__(self, conninfo: str, psql: str, csv_path: Path) -> None:
        self.conninfo, self.psql, self.csv_path = conninfo, psql, csv_path
        self.conn = connect(conninfo)
        self.sink = PostgresSink(conninfo)

    def reset(self) -> None:
        """Empty table and rollups, the days from 3 back to 3 ahead present, nothing dirty."""
        self.conn.execute(
            "TRUNCATE public.system_logs, public.system_log_counts, public.system_log_error_counts"
        )
        self.conn.execute("SELECT public.func_maintain_log_partitions(3, 3)")
        self.conn.execute("CHECKPOINT")

    def count(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM public.system_logs").fetchone()
        return int(row[0]) if row else 0

    def timed(self, what: str, statement: sql.Composable | str) -> float:
        started = time.perf_counter()
        self.conn.execute(statement)  # type: ignore[arg-type]  # trusted bench SQL
        elapsed = time.perf_counter() - started
        print(f"  {what}: {elapsed:.3f} s", flush=True)
        return elapsed


def bench_insert(db: Db, rows: Sequence[Row]) -> list[tuple[str, int, float]]:
    """Each path on an empty table; chunk size 0 means all rows in one call."""
    paths: list[tuple[str, int, Callable[[Db, Sequence[Row]], int]]] = [
        ("a  psql \\copy csv (1 statement)", 0, insert_a),
        ("b  func_insert_logs_batch x50", 50, insert_b),
        ("b  func_insert_logs_batch x500", 500, insert_b),
        ("s  seed design: row loop + exception block x50", 50, insert_seed),
    ]
    paths += [
        ("c1 binary COPY x500 (no dedup)", 500, insert_c1),
        ("c2 COPY temp + INSERT ON CONFLICT x500", 500, insert_c2),
        ("c3 INSERT unnest ON CONFLICT x500", 500, insert_c3),
        ("c4 PostgresSink.send x1000 (handler path)", 1000, insert_c4),
        ("c5 PostgresSink staged path x1000", 1000, insert_c5),
    ]
    results = []
    for name, size, insert in paths:
        db.reset()
        batches = list(chunks(rows, size or len(rows)))
        started = time.perf_counter()
        reported = sum(insert(db, chunk) for chunk in batches)
        elapsed = time.perf_counter() - started
        assert reported == len(rows) == db.count(), (name, reported, db.count())
        print(f"  {name}: {elapsed:.2f} s", flush=True)
        results.append((name, len(rows), elapsed))
    return results


def bench_retention(db: Db, rows: Sequence[Row]) -> list[tuple[str, int, float]]:
    day = db.conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date - 3").fetchone()
    assert day is not None
    start = datetime.combine(day[0], datetime.min.time(), UTC)
    part = f"system_logs_p{day[0]:%Y%m%d}"
    where = sql.SQL('"timestamp" >= {} AND "timestamp" < {}').format(
        sql.Literal(start), sql.Literal(start + timedelta(days=1))
    )
    results = []
    for n in (len(rows) // 4, len(rows)):
        step = timedelta(days=1) / n
        day_rows = [(r[0], start + i * step, *r[2:]) for i, r in enumerate(rows[:n])]
        db.reset()
        copy_rows(db.conn, LOGS, day_rows)
        db.conn.execute("CHECKPOINT")
        started = time.perf_counter()
        res = db.conn.execute("SELECT public.func_cleanup_old_logs(48)").fetchone()
        elapsed = time.perf_counter() - started
        assert res is not None and res[0]["dropped_partitions"] == [part], res
        assert db.count() == 0
        print(f"  d  retention {n}: {elapsed:.3f} s", flush=True)
        results.append(("d  func_cleanup_old_logs (drop day)", n, elapsed))
        db.reset()
        copy_rows(db.conn, LOGS, day_rows)
        db.conn.execute("CHECKPOINT")
        delete = db.timed(f"DELETE {n}", sql.SQL("DELETE FROM public.system_logs WHERE ") + where)
        assert db.count() == 0
        results.append(("d  DELETE same day", n, delete))
        vacuum = db.timed(f"VACUUM {n}", sql.SQL("VACUUM public.{}").format(sql.Identifier(part)))
        results.append(("d  (info) VACUUM after DELETE", n, vacuum))
    return results


HEADERS = ["path", "rows", "seconds", "rows/s", "ratio of (a)"]


def report(results: list[tuple[str, int, float]]) -> None:
    ceiling = results[0][1] / results[0][2]
    table = []
    for name, n, secs in results:
        rate = n / secs
        ratio = "" if name.startswith("d") else f"{rate / ceiling:.0%}"
        table.append((name, f"{n:,}", f"{secs:.3f}", f"{rate:,.0f}", ratio))
    align = ("left", "right", "right", "right", "right")
    print(tabulate(table, HEADERS, colalign=align, disable_numparse=True))
    drops = [r for r in results if r[0].startswith("d  func")]
    deletes = [r for r in results if r[0].startswith("d  DELETE")]
    for (_, n, drop), (_, _, delete) in zip(drops, deletes, strict=True):
        print(f"(d) {n:,} rows: DELETE takes {delete / drop:,.1f}x as long as the drop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="server to use (default: embedded pgserver)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rollups", choices=("on", "off"), default="on")
    args = parser.parse_args()
    run_started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    server = None
    if args.database_url:
        admin_url, psql = args.database_url, shutil.which("psql") or "/usr/bin/psql"
    else:
        server = start_embedded(tmp / "pg")  # imports pgserver quietly first
        import pgserver._commands

        admin_url, psql = server.url, str(pgserver._commands.POSTGRES_BIN_PATH / "psql")
    name = f"bench_ingest_{os.getpid()}"
    with connect(admin_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        db = Db(make_conninfo(admin_url, dbname=name), psql, tmp / "rows.csv")
        migrate(db.conn)
        db.conn.execute(SEED_FUNCTION)  # this run's scratch database only
        set_rollups(db.conn, args.rollups)
        db.reset()
        info = db.conn.execute(
            "SELECT version(), now(), to_regclass('public.system_logs_message_trgm_idx')"
            " IS NOT NULL, current_setting('shared_buffers'), current_setting('max_wal_size'),"
            " current_setting('synchronous_commit')"
        ).fetchone()
        assert info is not None
        started = time.perf_counter()
        rows = generate(args.rows, info[1] - timedelta(minutes=1))
        write_csv(rows, db.csv_path)
        print(f"generated {len(rows):,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        results = bench_insert(db, rows) + bench_retention(db, rows)
        db.conn.close()
        print(
            f"\nserver: {info[0]}\npsql: {psql}\ntrigram index: {info[2]}; "
            f"shared_buffers={info[3]} max_wal_size={info[4]} synchronous_commit={info[5]}"
            f"\ndate: {info[1].astimezone(UTC):%Y-%m-%d %H:%M} UTC; rows: {len(rows):,}; "
            f"machine: {os.cpu_count()} cores; rollup trigger: {args.rollups}\n"
        )
        report(results)
        print(f"whole run: {time.perf_counter() - run_started:.0f} s")
    finally:
        with connect(admin_url) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
