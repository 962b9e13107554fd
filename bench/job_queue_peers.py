"""Worker processes draining a queue: ``orchestrator worker`` against pgqueuer and
procrastinate, the queues users would pick instead (bench/job_queue.py, section 4).

Each row: N queued no-op jobs, P worker processes started and ready first, then the
clock runs from "go" until every job is done, counted from each system's own tables.

* ``orchestrator worker --concurrency 10`` (the command as shipped, LISTEN, logs on the
  heartbeat): the queue is paused while the processes start and fill, and the clock
  starts at ``func_resume_queue`` (whose NOTIFY wakes them); done = N jobs completed.
  The job is the callable ``json:dumps`` (a no-op in the worker's own process, like the
  peers' async no-ops: no child process per job);
* pgqueuer (``QueueManager.run(batch_size=10, mode=drain)``, asyncpg): each process
  waits for a go-file, then drains and exits; done = the last process exited;
* procrastinate (``run_worker_async(concurrency=10, wait=False)``, psycopg): the same.

The peers are installed in the bench's environment only (``pip install -e '.[bench]'``);
a missing one is reported as a row, not a failure. Their schemas go into the bench's
scratch database, never a database the bench is pointed at.
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from tabulate import tabulate

JOBS_PER_CALL = 1000
WORKER_CONCURRENCY = 10

PGQUEUER = """
import asyncio, os, sys, time
from datetime import timedelta
import asyncpg
from pgqueuer import QueueManager
from pgqueuer.db import AsyncpgDriver
from pgqueuer.queries import Queries
from pgqueuer.types import QueueExecutionMode

async def main(dsn, go):
    conn = await asyncpg.connect(dsn)
    qm = QueueManager(Queries(AsyncpgDriver(conn)))

    @qm.entrypoint("noop")
    async def noop(job):
        return None

    print("ready", flush=True)
    while not os.path.exists(go):
        await asyncio.sleep(0.005)
    await qm.run(batch_size=10, dequeue_timeout=timedelta(seconds=0.2),
                 mode=QueueExecutionMode.drain)
    await conn.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

PROCRASTINATE = """
import asyncio, logging, os, sys
import procrastinate

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=sys.argv[1]))

@app.task(name="noop")
async def noop():
    return None

async def main(go):
    async with app.open_async():
        print("ready", flush=True)
        while not os.path.exists(go):
            await asyncio.sleep(0.005)
        await app.run_worker_async(concurrency=10, wait=False, install_signal_handlers=False,
                                   fetch_job_polling_interval=0.2)

logging.disable(logging.WARNING)
asyncio.run(main(sys.argv[2]))
"""


class PeerMissing(Exception):
    """The peer is not installed in this environment."""


def _spawn(code: str, url: str, go: Path, processes: int) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(proc.stderr.read() if proc.stderr else "a peer did not start")
    return procs


def _drain_processes(code: str, url: str, processes: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        procs = _spawn(code, url, go, processes)
        start = time.perf_counter()
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"peer worker failed: {err.strip().splitlines()[-1:]}")
        return time.perf_counter() - start


def pgqueuer_seconds(url: str, jobs: int, processes: int) -> tuple[float, int]:
    """(seconds to drain ``jobs`` no-ops with ``processes`` pgqueuer workers, jobs done)."""
    try:
        import asyncio

        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries
    except ImportError as error:
        raise PeerMissing(str(error)) from None

    async def fill() -> None:
        conn = await asyncpg.connect(url)
        queries = Queries(AsyncpgDriver(conn))
        exists = await conn.fetchval("SELECT to_regclass('pgqueuer') IS NOT NULL")
        if not exists:
            await queries.install()
        await conn.execute("TRUNCATE pgqueuer, pgqueuer_log")
        for start in range(0, jobs, JOBS_PER_CALL):
            n = min(JOBS_PER_CALL, jobs - start)
            await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
        await conn.execute("VACUUM ANALYZE pgqueuer")
        await conn.close()

    asyncio.run(fill())
    seconds = _drain_processes(PGQUEUER, url, processes)
    with psycopg.connect(url, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM pgqueuer").fetchone()
        done = conn.execute(
            "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"
        ).fetchone()
    assert left is not None and done is not None
    assert left[0] == 0, f"pgqueuer left {left[0]} jobs"
    return seconds, int(done[0])


def procrastinate_seconds(url: str, jobs: int, processes: int) -> tuple[float, int]:
    """(seconds to drain ``jobs`` no-ops with ``processes`` procrastinate workers, done)."""
    try:
        import asyncio

        import procrastinate
    except ImportError as error:
        raise PeerMissing(str(error)) from None
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    async def fill() -> None:
        async with app.open_async():
            with psycopg.connect(url, autocommit=True) as conn:
                installed = conn.execute(
                    "SELECT to_regclass('procrastinate_jobs') IS NOT NULL"
                ).fetchone()
            if not (installed and installed[0]):
                await app.schema_manager.apply_schema_async()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE procrastinate_jobs CASCADE")
            for start in range(0, jobs, JOBS_PER_CALL):
                n = min(JOBS_PER_CALL, jobs - start)
                await noop.batch_defer_async(*([{}] * n))

    asyncio.run(fill())
    seconds = _drain_processes(PROCRASTINATE, url, processes)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM procrastinate_jobs"
        ).fetchone()
    assert row is not None
    assert row[0] == row[1], f"procrastinate finished {row[0]} of {row[1]}"
    return seconds, int(row[0])


def worker_seconds(
    url: str, jobs: int, processes: int, db_log_level: str = "INFO"
) -> tuple[float, int]:
    """(seconds for ``processes`` ``orchestrator worker`` processes to run ``jobs``
    callable no-ops, jobs completed as counted in ``jobs``). ``db_log_level`` INFO (the
    default) ships each job's two timeline lines ("Running job", "Job ... completed")
    to ``system_logs``; WARNING ships none, to show what the timeline costs."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE jobs, job_queue, job_events, approval_requests, workers CASCADE")
        conn.execute("SELECT func_pause_queue('local', NULL, 'bench', 'workers starting')")
        job = (
            '{"user_id": "u0", "job_type": "bench", '
            '"payload": {"callable": "json:dumps", "kwargs": {"obj": 1}}}'
        )
        for start in range(0, jobs, JOBS_PER_CALL):
            n = min(JOBS_PER_CALL, jobs - start)
            conn.execute(
                "SELECT func_submit_jobs(jsonb_agg(%s::jsonb)) FROM generate_series(1, %s)",
                [job, n],
            )
        conn.execute("VACUUM ANALYZE job_queue")
        conn.execute("VACUUM ANALYZE jobs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "ORCHESTRATOR_"))}
    env |= {"DATABASE_URL": url, "ORCHESTRATOR_LOG_LEVEL": "WARNING", "DB_LOG_LEVEL": db_log_level}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator",
                "worker",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--worker-id",
                f"bench-{n}",
                "--poll-interval",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while conn.execute("SELECT count(*) FROM workers").fetchone()[0] < processes:  # type: ignore[index]
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    for proc in procs:
                        proc.terminate()
                    said = "; ".join(
                        line
                        for proc in procs
                        for line in proc.communicate(timeout=30)[1].splitlines()[-2:]
                    )
                    raise RuntimeError(f"the workers did not start: {said or 'no output'}")
                time.sleep(0.05)
            time.sleep(0.5)  # their LISTEN connections are up
            start = time.perf_counter()
            conn.execute("SELECT func_resume_queue('local')")
            # both counts go through small partial indexes, not the finished rows
            while conn.execute(
                "SELECT EXISTS (SELECT 1 FROM job_queue WHERE status = 'queued') "
                "OR EXISTS (SELECT 1 FROM job_queue WHERE status = 'running')"
            ).fetchone()[0]:  # type: ignore[index]
                time.sleep(0.01)
            seconds = time.perf_counter() - start
            done = conn.execute("SELECT count(*) FROM jobs WHERE status = 'completed'").fetchone()[
                0
            ]  # type: ignore[index]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
    return seconds, int(done)


def print_workers(
    url: str, jobs: int, bare1: float | None, bare10: float | None, rounds: int = 2
) -> None:
    """Section 4: worker processes of the hub and of its peers, ``rounds`` interleaved
    rounds (every system once per round), the median of each."""
    rows = []
    rates: dict[tuple[str, int], float] = {}
    runs = [
        ("orchestrator worker", worker_seconds),
        (
            "worker, no job log rows",  # DB_LOG_LEVEL=WARNING: for information, no verdict
            functools.partial(worker_seconds, db_log_level="WARNING"),
        ),
        ("pgqueuer", pgqueuer_seconds),
        ("procrastinate", procrastinate_seconds),
    ]
    for processes in (1, 4):
        measured: dict[str, list[float]] = {}
        missing: dict[str, str] = {}
        for _ in range(rounds):
            for name, run in runs:
                if name in missing:
                    continue
                try:
                    seconds, done = run(url, jobs, processes)
                except PeerMissing as error:
                    missing[name] = str(error)
                    continue
                assert done == jobs, (name, done, jobs)
                measured.setdefault(name, []).append(jobs / seconds)
        for name, _run in runs:
            if name in missing:
                rows.append([name, processes, "not installed", "", "", "", missing[name]])
                continue
            rate = rates[name, processes] = statistics.median(measured[name])
            each = " ".join(f"{r:,.0f}" for r in measured[name])
            rows.append([name, processes, f"{rate:,.0f}", jobs, "", "", f"rounds: {each}"])
    for row in rows:
        name, processes = row[0], row[1]
        if (name, processes) not in rates:
            continue
        base = rates.get(("pgqueuer", processes))
        row[4] = f"{rates[name, processes] / base:.2f}" if base else "-"
        bare = bare1 if processes == 1 else bare10
        row[5] = f"{rates[name, processes] / bare:.2f}" if bare else "-"
    mine, theirs = rates.get(("orchestrator worker", 4)), rates.get(("pgqueuer", 4))
    verdict = "-" if not (mine and theirs) else ("met" if mine >= theirs else "NOT met")
    print(
        f"\n4. worker processes draining {jobs:,} no-op jobs (jobs/s, median of {rounds} "
        "interleaved rounds; done counted from each"
    )
    print("   system's tables); ratios against pgqueuer with as many processes and against")
    print("   the bare loop of section 1 (4 threads claiming 1, resp. 10)")
    print(
        tabulate(
            rows,
            headers=["system", "processes", "jobs/s", "done", "/pgqueuer", "/bare", "note"],
        )
    )
    print(f"target: orchestrator worker x4 >= pgqueuer x4: {verdict}")
