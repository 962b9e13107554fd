"""``orchestrator demo``: the hub end to end on the embedded default, in a few seconds.

Migrates, writes a realistic burst of orchestrator and worker log rows (several workers,
tasks and cycles, with warnings and errors) through ``func_insert_logs_batch``, reads
back a summary computed by ``func_log_statistics``, and stops the embedded server.
"""

from __future__ import annotations

import argparse
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tabulate import tabulate

from orchestrator.config import get_settings
from orchestrator.db import calls, migrate
from orchestrator.db.psycopg import PsycopgExecutor, connect
from orchestrator.db.target import sql_target

WORKERS = ("gpu-demo-a100-1", "gpu-demo-a100-2", "gpu-demo-l4-1")
CYCLES = 12
BATCH = 50


def register(commands: Any) -> None:
    """Adds the ``demo`` subcommand."""
    parser = commands.add_parser(
        "demo",
        help="run the hub end to end on the embedded PostgreSQL (or DATABASE_URL)",
        description="Migrates, writes a burst of orchestrator and worker logs, prints a "
        "summary computed by the database, and stops the embedded server.",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the burst")
    parser.set_defaults(run=run)


def _entry(
    at: datetime, level: str, source_type: str, source_id: str, message: str, **extra: Any
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": at.isoformat(),
        "log_level": level,
        "source_type": source_type,
        "source_id": source_id,
        "message": message,
        **extra,
    }


def burst(instance_id: str, rng: random.Random, now: datetime) -> Iterator[dict[str, Any]]:
    """A plausible ten minutes of one orchestrator and three GPU workers."""
    start = now - timedelta(minutes=10)
    step = timedelta(minutes=10) / CYCLES
    for cycle in range(1, CYCLES + 1):
        at = start + step * (cycle - 1)
        queued = rng.randint(0, 6)
        yield _entry(
            at,
            "INFO",
            "orchestrator_gpu",
            instance_id,
            f"Cycle {cycle}: {queued} tasks queued, {len(WORKERS)} workers active",
            cycle_number=cycle,
            logger_name="orchestrator.control_loop",
        )
        if queued > 4:
            yield _entry(
                at,
                "WARNING",
                "orchestrator_gpu",
                instance_id,
                f"Queue depth {queued} above target 4; consider scaling up",
                cycle_number=cycle,
                logger_name="orchestrator.scaler",
            )
        for worker in WORKERS:
            task = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            t = at + timedelta(seconds=rng.uniform(0, 20))
            common = {"worker_id": worker, "task_id": task, "logger_name": "worker.runtime"}
            yield _entry(t, "INFO", "worker", worker, "Claimed task; loading model", **common)
            for pct in (25, 50, 75, 100):
                t += timedelta(seconds=rng.uniform(2, 6))
                vram = round(rng.uniform(30, 79), 1)
                yield _entry(
                    t,
                    "DEBUG" if pct < 100 else "INFO",
                    "worker",
                    worker,
                    f"Generation progress {pct}%",
                    metadata={"vram_gb": vram},
                    **common,
                )
                if vram > 76:
                    yield _entry(
                        t,
                        "WARNING",
                        "worker",
                        worker,
                        f"VRAM at {vram} GB of 80 GB",
                        metadata={"vram_gb": vram},
                        **common,
                    )
            if rng.random() < 0.12:
                yield _entry(
                    t,
                    "ERROR",
                    "worker",
                    worker,
                    "Task failed: CUDA out of memory",
                    exception="torch.OutOfMemoryError: CUDA out of memory. "
                    "Tried to allocate 2.00 GiB",
                    **common,
                )
            else:
                yield _entry(
                    t, "INFO", "worker", worker, "Task complete; uploaded output", **common
                )


def run(args: argparse.Namespace) -> int:
    """Runs the demo."""
    settings = get_settings()
    rng = random.Random(args.seed)
    with sql_target(settings) as target, connect(target.url) as conn:
        print(f"Database: {target.label}")
        applied = migrate.migrate(conn)
        print(f"Migrations: {len(applied)} applied now, schema up to date.")
        executor = PsycopgExecutor(conn)
        executor.run(calls.maintain_log_partitions())
        now = datetime.now(UTC)
        entries = list(burst(settings.orchestrator_instance_id, rng, now))
        inserted = duplicates = 0
        for i in range(0, len(entries), BATCH):
            result = executor.run(calls.insert_logs_batch(entries[i : i + BATCH]))
            inserted, duplicates = inserted + result.inserted, duplicates + result.duplicates
            for rejected in result.rejected:
                print(f"  rejected entry {i + rejected.index}: {rejected.reason}")
        print(
            f"Wrote {inserted} log rows in batches of {BATCH} via func_insert_logs_batch "
            f"({duplicates} duplicates skipped)."
        )
        stats = executor.run(
            calls.log_statistics(now - timedelta(minutes=15), now + timedelta(minutes=1))
        )
    _print_summary(stats)
    if target.embedded is not None:
        print(f"Stopped the embedded PostgreSQL (data kept in {target.embedded.data_dir}).")
    return 0


def _print_summary(stats: calls.LogStatistics) -> None:
    print(
        f"\nLast 15 minutes, counted by the database: {stats.total} rows, {stats.errors} errors.\n"
    )
    order = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    print(tabulate([(lvl, stats.by_level.get(lvl, 0)) for lvl in order], headers=["level", "rows"]))
    print()
    print(
        tabulate(
            [(s["source_type"], s["source_id"], s["count"], s["errors"]) for s in stats.by_source],
            headers=["source_type", "source_id", "rows", "errors"],
        )
    )
    print()
