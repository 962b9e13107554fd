"""``orchestrator demo``: the hub end to end on the embedded default, in a few seconds.

Migrates, then plays ten minutes of an orchestrator and three GPU workers through real
``logging`` calls: each has a :class:`~orchestrator.logs.handler.DatabaseLogHandler`,
the orchestrator numbers its cycles, workers tag records with their task. It flushes
the handlers, prints a summary that the database computed (``func_log_statistics``
over exactly this run's time span, so a run a minute after another counts only its own
rows) and each handler's ``stats()``, and stops the embedded server. The jobs part
keeps its processes' output in a scratch directory of this run's own, and the commands
it prints to read on are spelled so that they work as printed (:func:`command_name`).
"""

from __future__ import annotations

import argparse
import contextvars
import logging
import os
import random
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tabulate import tabulate

from orchestrator.cli.demo_jobs import run_jobs_demo
from orchestrator.config import get_settings
from orchestrator.db import migrate
from orchestrator.db.psycopg import PsycopgExecutor, connect
from orchestrator.db.target import resolve_database
from orchestrator.logs import calls
from orchestrator.logs.context import (
    LogContext,
    set_cycle_number,
    set_task_context,
)
from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.postgres import PostgresSink

WORKERS = ("gpu-demo-a100-1", "gpu-demo-a100-2", "gpu-demo-l4-1")
CYCLES = 12


def register(commands: Any) -> None:
    """Adds the ``demo`` subcommand."""
    parser = commands.add_parser(
        "demo",
        help="run the hub end to end on the embedded PostgreSQL (or DATABASE_URL)",
        description="Migrates, logs a burst of orchestrator and worker activity through "
        "the database log handler, prints a summary computed by the database and the "
        "handlers' statistics, and stops the embedded server.",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the burst")
    parser.add_argument(
        "--no-jobs", action="store_true", help="only the log part: no daemon, workers or jobs"
    )
    parser.set_defaults(run=run)


def _logger(name: str, handler: DatabaseLogHandler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False  # the demo prints its own summary, not every record
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def play(
    orchestrator: logging.Logger, workers: dict[str, logging.Logger], rng: random.Random
) -> None:
    """A plausible burst: cycles of the control loop, tasks on each worker, some trouble."""
    for cycle in range(1, CYCLES + 1):
        set_cycle_number(cycle)
        queued = rng.randint(0, 6)
        orchestrator.info(
            "Cycle %d: %d tasks queued, %d workers active", cycle, queued, len(workers)
        )
        if queued > 4:
            orchestrator.warning("Queue depth %d above target 4; consider scaling up", queued)
        for worker_id, log in workers.items():
            # Each worker's task runs in a context of its own (as a worker thread would),
            # so its task and worker ids end with it and never tag the orchestrator's rows.
            contextvars.copy_context().run(_work_on_task, worker_id, log, rng)
    set_cycle_number(None)


def _work_on_task(worker_id: str, log: logging.Logger, rng: random.Random) -> None:
    task = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    set_task_context(task, worker_id)
    with LogContext(model="wan2.1-14b", step="generate"):
        log.info("Claimed task; loading model")
        for pct in (25, 50, 75, 100):
            vram = round(rng.uniform(30, 79), 1)
            log.log(
                logging.DEBUG if pct < 100 else logging.INFO,
                "Generation progress %d%%",
                pct,
                extra={"vram_gb": vram},
            )
            if vram > 76:
                log.warning("VRAM at %.1f GB of 80 GB", vram, extra={"vram_gb": vram})
        if rng.random() < 0.12:
            try:
                raise MemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            except MemoryError:
                log.exception("Task failed")
        else:
            log.info("Task complete; uploaded output")


def command_name() -> str:
    """How to run ``orchestrator`` from the user's shell, as printed after the demo:
    plain ``orchestrator`` when that is this installation on PATH, else the path of this
    environment's script (``.venv/bin/orchestrator`` after ``make demo``, which does not
    activate the venv), else ``python -m orchestrator`` with this interpreter."""
    script = Path(sys.executable).parent / "orchestrator"
    on_path = shutil.which("orchestrator")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "orchestrator"
    if script.exists():
        try:
            relative = os.path.relpath(script)
        except ValueError:  # another drive (Windows)
            return str(script)
        # a path with a slash is never looked up on PATH; outside the working
        # directory the absolute path reads better than ../../..
        return str(script) if relative.startswith("..") else relative
    return f"{sys.executable} -m orchestrator"


def run(args: argparse.Namespace) -> int:
    """Runs the demo."""
    settings = get_settings()
    rng = random.Random(args.seed)
    with resolve_database(settings, sql=True) as target:
        with connect(target.url) as conn:
            print(f"Database: {target.label}")
            applied = migrate.migrate(conn)
            print(f"Schema: {len(applied)} file(s) of sql/ applied now, up to date.")
            PsycopgExecutor(conn).run(calls.maintain_log_partitions())
        url = target.url

        def handler(source_type: str, source_id: str) -> DatabaseLogHandler:
            return DatabaseLogHandler(
                logging.DEBUG,
                sink=lambda: PostgresSink(url, target.label),
                source_type=source_type,
                source_id=source_id,
                worker_id=source_id if source_type == "worker" else None,
            )

        handlers = {"orchestrator": handler("orchestrator_gpu", settings.orchestrator_instance_id)}
        handlers.update({w: handler("worker", w) for w in WORKERS})
        orchestrator = _logger("demo.orchestrator.control_loop", handlers["orchestrator"])
        workers = {w: _logger(f"demo.worker.{w}", handlers[w]) for w in WORKERS}
        # This run's rows are those stamped between these two moments (the handlers
        # stamp records with this clock): the summary counts them and nothing older.
        started = datetime.now(UTC)
        play(orchestrator, workers, rng)
        ended = datetime.now(UTC) + timedelta(microseconds=1)
        delivered = all(h.flush(30) for h in handlers.values())
        for name, h in handlers.items():
            (orchestrator if name == "orchestrator" else workers[name]).removeHandler(h)
            h.close()
        with connect(url) as conn:
            executor = PsycopgExecutor(conn)
            stats = executor.run(calls.log_statistics(started, ended))
            verdict = "yes" if delivered else "NO"
            print(f"Logged through DatabaseLogHandler; every record delivered: {verdict}.")
            _print_summary(stats, handlers)
            jobs_ok = args.no_jobs or run_jobs_demo(
                executor,
                url,
                Path(tempfile.mkdtemp(prefix="orchestrator-demo-")),
                command=command_name(),
            )
    if target.embedded is not None:
        print(f"Stopped the embedded PostgreSQL (data kept in {target.embedded.data_dir}).")
    return 0 if delivered and jobs_ok else 1


def _print_summary(stats: calls.LogStatistics, handlers: dict[str, DatabaseLogHandler]) -> None:
    print(f"\nThis run, counted by the database: {stats.total} rows, {stats.errors} errors.\n")
    order = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    print(tabulate([(lvl, stats.by_level.get(lvl, 0)) for lvl in order], headers=["level", "rows"]))
    print()
    print(
        tabulate(
            [(s["source_type"], s["source_id"], s["count"], s["errors"]) for s in stats.by_source],
            headers=["source_type", "source_id", "rows", "errors"],
        )
    )
    print("\nHandler statistics (DatabaseLogHandler.stats()):")
    rows = []
    for name, h in handlers.items():
        s = h.stats()
        dropped = sum(s["dropped"].values())
        rows.append(
            (
                name,
                s["state"],
                s["sent"],
                s["duplicates"],
                dropped,
                s["rejected"],
                s["retries"],
                s["errors"],
            )
        )
    print(
        tabulate(
            rows,
            headers=[
                "handler",
                "state",
                "sent",
                "duplicates",
                "dropped",
                "rejected",
                "retries",
                "errors",
            ],
        )
    )
    print()
