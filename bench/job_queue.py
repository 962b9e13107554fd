"""The job queue (issue 5): throughput, wake-up latency and dead-worker recovery, each
against a bare ``SELECT ... FOR UPDATE SKIP LOCKED`` + ``UPDATE`` loop on a plain table
measured in the same run, on the same server.

Questions, each answered in the printed tables:
1. throughput — N queued jobs drained by T worker threads (one connection each) doing
   ``func_claim_jobs`` (batches of 1, 10, 50) and one ``func_complete_job`` per job,
   through the hub's own Python path (PsycopgExecutor + decoders); rows
   ``complete_jobs`` report a claimed batch in one call, rows ``complete_jobs_and_claim``
   report it and claim the next batch in one call and one commit (as ``orchestrator
   worker`` does). Interleaved rounds (``--rounds``). Baseline: the same
   threads on a plain table: ``UPDATE ... WHERE id IN (SELECT id ... ORDER BY priority
   DESC, id LIMIT b FOR UPDATE SKIP LOCKED) RETURNING`` then one ``UPDATE`` per job.
   Targets (issue 15, ratios in one run): at least 0.8 of the bare loop claiming one,
   0.6 claiming ten; rows ``complete_jobs`` complete a claimed batch in one call;
2. latency — a submitter enqueues one job every 20 ms; one claimer takes them. With
   NOTIFY the claimer LISTENs on ``hub_jobs`` and claims when woken (the submit's NOTIFY
   is delivered at its commit); poll-only (PgBouncer/Supavisor transaction mode) it
   claims every ``--poll-interval`` (default 0.1 s) when idle. Latency = submit call
   start -> claim returned, p50/p95. Baseline: the plain table with ``INSERT`` +
   ``pg_notify`` and the same claimer. Target: p50 <= 10 ms with NOTIFY;
3. dead worker -> reclaimable — a worker claims a job with the default lease, renews it
   (the worst case: it dies just after a renewal) and disconnects without a word; a
   claimer polling every 100 ms measures how long until it gets the job. Baseline: none
   (the bare loop has no leases: its job would stay "running" forever). Target <= 30 s.

4. worker processes — ``orchestrator worker`` (1 and 4 processes, ``--concurrency 10``)
   against pgqueuer and procrastinate with as many processes, draining the same number
   of no-op jobs (bench/job_queue_peers.py says how each is driven). Target: the hub's
   four processes at least as fast as pgqueuer's four;
5. a claim behind a retry backlog — claim + complete one at a time with 20,000 jobs
   waiting for a retry backoff, against the same with none. Target: ratio >= 0.9 (the
   claim's cost does not grow with the jobs it cannot take).

Run: python bench/job_queue.py [--database-url URL] [--jobs N] [--threads T]
     [--sections 1,2,3,4,5] [--worker-jobs N]
(the peers of section 4: pip install -e '.[bench]'; wrap the run in
``flock /tmp/hub-bench.lock`` on a shared machine)
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory comes first on sys.path, and the file's name
# would shadow the standard library's ``queue`` that psycopg imports: drop that entry.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from tabulate import tabulate

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after the stdlib: no shadowing
import job_queue_peers as peers

from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from orchestrator.db.psycopg import PsycopgExecutor, connect
from orchestrator.jobs import calls

BARE_SETUP = """
CREATE TABLE IF NOT EXISTS bench_bare (
    id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'queued',
    priority integer NOT NULL DEFAULT 100, payload jsonb NOT NULL, worker text);
CREATE INDEX IF NOT EXISTS bench_bare_claim
    ON bench_bare (priority DESC, id) WHERE status = 'queued';
"""
BARE_CLAIM = """
UPDATE bench_bare SET status = 'running', worker = %s
 WHERE id IN (SELECT id FROM bench_bare WHERE status = 'queued'
               ORDER BY priority DESC, id LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id, payload"""
BARE_DONE = "UPDATE bench_bare SET status = 'done' WHERE id = %s"
BARE_SUBMIT = """
WITH i AS (INSERT INTO bench_bare (payload) VALUES ('{"command": "true"}') RETURNING id)
SELECT id, pg_notify('bench_bare', 'local') FROM i"""
HUB_FILL = """
SELECT count(func_submit_job(jsonb_build_object(
           'user_id', 'u' || (i %% 8), 'job_type', 'bench',
           'payload', jsonb_build_object('command', 'true'))))
  FROM generate_series(1, %s) i"""


@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """URL of a migrated scratch database on the given server or a fresh embedded one."""
    if url:
        name = f"bench_queue_{os.getpid()}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        target = url.rsplit("/", 1)[0] + "/" + name
        try:
            yield target
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = start_embedded(Path(tmp) / "pg")
        try:
            yield server.url
        finally:
            server.stop()


def prepare(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate.migrate(conn)
        conn.execute(BARE_SETUP)
        for i in range(8):
            conn.execute("SELECT func_upsert_hub_user(%s, %s)", [f"u{i}", f"org-{i % 4}"])


def reset(url: str) -> None:
    """Empty both queues and vacuum them, so every scenario starts from the same state
    (CASCADE: in this scratch database, whatever refers to a job goes with it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE jobs, job_queue, job_events, approval_requests, bench_bare CASCADE")
        conn.execute("VACUUM ANALYZE jobs")
        conn.execute("VACUUM ANALYZE job_queue")
        conn.execute("VACUUM ANALYZE bench_bare")


# -- 1. throughput ---------------------------------------------------------------------


HUB_MODES = {
    # kind: how a claimed batch is reported
    "hub": "complete",  # one func_complete_job per job
    "hub-together": "complete_jobs",  # the batch in one func_complete_jobs call
    "hub-fused": "complete_jobs_and_claim",  # ... which also claims the next batch
}


def hub_worker(url: str, name: str, batch: int, kind: str = "hub") -> Callable[[], int]:
    """Claims ``batch`` at a time and completes each job as ``HUB_MODES[kind]`` says
    (``hub-fused``: the completions and the next claim in one call and one commit, as
    ``orchestrator worker`` reports a finished batch)."""
    executor = PsycopgExecutor.connect(url)

    def drain() -> int:
        done = 0
        try:
            jobs = executor.run(calls.claim_jobs(name, max_jobs=batch)).jobs
            while jobs:
                items = [(job.job_id, job.lease_token, None) for job in jobs]
                if kind == "hub-fused":
                    both = executor.run(calls.complete_jobs_and_claim(items, name, batch))
                    assert all(v.accepted for v in both.verdicts)
                    done += len(jobs)
                    jobs = both.claim.jobs
                    continue
                if kind == "hub-together":
                    assert all(v.accepted for v in executor.run(calls.complete_jobs(items)))
                else:
                    for job in jobs:
                        assert executor.run(
                            calls.complete_job(job.job_id, job.lease_token)
                        ).accepted
                done += len(jobs)
                jobs = executor.run(calls.claim_jobs(name, max_jobs=batch)).jobs
            return done
        finally:
            executor.close()

    return drain


def bare_worker(url: str, name: str, batch: int) -> Callable[[], int]:
    conn = connect(url)

    def drain() -> int:
        done = 0
        try:
            while True:
                rows = conn.execute(BARE_CLAIM, [name, batch]).fetchall()
                if not rows:
                    return done
                for job_id, _payload in rows:
                    conn.execute(BARE_DONE, [job_id])
                    done += 1
        finally:
            conn.close()

    return drain


def drain_rate(url: str, kind: str, jobs: int, threads: int, batch: int) -> float:
    """Jobs/s for ``threads`` workers draining ``jobs`` queued jobs."""
    reset(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if kind != "bare":
            conn.execute(HUB_FILL, [jobs])
        else:
            conn.execute(
                'INSERT INTO bench_bare (payload) SELECT \'{"command": "true"}\' '
                "FROM generate_series(1, %s)",
                [jobs],
            )
    if kind == "bare":
        drains = [bare_worker(url, f"{kind}-{n}", batch) for n in range(threads)]
    else:
        drains = [hub_worker(url, f"{kind}-{n}", batch, kind) for n in range(threads)]
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)

    def run(n: int) -> None:
        barrier.wait()
        counts[n] = drains[n]()

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    assert sum(counts) == jobs, (kind, sum(counts), jobs)
    return jobs / elapsed


# -- 2. latency ------------------------------------------------------------------------


def latencies(url: str, kind: str, mode: str, count: int, poll: float) -> list[float]:
    """Seconds from submit call start to claim returned, one per job."""
    reset(url)
    submitted: dict[Any, float] = {}
    claimed: dict[Any, float] = {}
    stop = threading.Event()
    ready = threading.Event()

    def claim_all(executor: PsycopgExecutor) -> None:
        while True:
            if kind == "hub":
                ids = [j.job_id for j in executor.run(calls.claim_jobs("lat", max_jobs=10)).jobs]
            else:
                ids = [r[0] for r in executor.conn.execute(BARE_CLAIM, ["lat", 10]).fetchall()]
            now = time.perf_counter()
            for job_id in ids:
                claimed[job_id] = now
            if not ids:
                return

    def claimer() -> None:
        with PsycopgExecutor.connect(url) as executor:
            if mode == "notify":
                with psycopg.connect(url, autocommit=True) as listener:
                    listener.execute(
                        f"LISTEN {calls.NOTIFY_CHANNEL if kind == 'hub' else 'bench_bare'}"
                    )
                    ready.set()
                    while not stop.is_set():
                        # woken by a NOTIFY, or after 1 s anyway (the polling fallback)
                        for _ in listener.notifies(timeout=1.0, stop_after=1):
                            pass
                        claim_all(executor)
            else:
                ready.set()
                while not stop.is_set():
                    claim_all(executor)
                    time.sleep(poll)

    thread = threading.Thread(target=claimer)
    thread.start()
    ready.wait()
    with PsycopgExecutor.connect(url) as submitter:
        for i in range(count):
            start = time.perf_counter()
            if kind == "hub":
                job_id: Any = submitter.run(
                    calls.submit_job(f"u{i % 8}", "bench", {"command": "true"})
                ).job_id
            else:
                job_id = submitter.conn.execute(BARE_SUBMIT).fetchone()[0]  # type: ignore[index]
            submitted[job_id] = start
            time.sleep(0.02)
    deadline = time.monotonic() + 10
    while len(claimed) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join()
    assert len(claimed) == count, (kind, mode, len(claimed))
    return [claimed[j] - submitted[j] for j in submitted]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


# -- 3. dead worker --------------------------------------------------------------------


def dead_worker_seconds(url: str) -> tuple[float, int]:
    """(seconds from the worker's death to the job being claimed again, lease seconds)."""
    reset(url)
    with PsycopgExecutor.connect(url) as setup:
        setup.run(calls.submit_job("u0", "bench", {"command": "sleep 600"}))
    dying = PsycopgExecutor.connect(url)
    job = dying.run(calls.claim_jobs("doomed")).jobs[0]
    lease = calls.DEFAULT_LEASE_SECONDS
    dying.run(calls.extend_job_leases("doomed"))  # its last heartbeat, default lease
    dying.close()  # SIGKILL as the database sees it: the connection is gone, nothing more
    died = time.perf_counter()
    with PsycopgExecutor.connect(url) as rescuer:
        while True:
            jobs = rescuer.run(calls.claim_jobs("rescuer")).jobs
            if jobs:
                assert jobs[0].job_id == job.job_id and jobs[0].attempt == 2
                late = rescuer.run(calls.complete_job(job.job_id, job.lease_token))
                assert not late.accepted
                return time.perf_counter() - died, lease
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server to create a scratch database on")
    parser.add_argument("--jobs", type=int, default=4000, help="jobs per throughput run")
    parser.add_argument("--threads", type=int, default=4, help="worker threads")
    parser.add_argument("--rounds", type=int, default=3, help="section 1's interleaved rounds")
    parser.add_argument("--worker-rounds", type=int, default=2, help="section 4's rounds")
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=0.1)
    parser.add_argument("--skip-dead-worker", action="store_true", help="= sections 1,2,4,5")
    parser.add_argument("--sections", default="1,2,3,4,5", help="which questions to answer")
    parser.add_argument("--worker-jobs", type=int, default=5000, help="jobs per section-4 row")
    parser.add_argument("--backlog", type=int, default=20_000, help="section 5's waiting retries")
    args = parser.parse_args()
    sections = {int(n) for n in args.sections.split(",")}
    if args.skip_dead_worker:
        sections.discard(3)

    with scratch_database(args.database_url) as url:
        prepare(url)
        server = psycopg.connect(url).execute("SELECT version()").fetchone()[0]  # type: ignore[index]
        print(
            f"server: {server.split(' on ')[0]}; {args.threads} worker threads; "
            f"{args.jobs} jobs per run"
        )
        rows = []
        rates: dict[tuple[str, int], float] = {}
        for batch in (1, 10, 50) if 1 in sections or 4 in sections else ():
            kinds = ("bare", "hub", "hub-together", "hub-fused")
            if batch == 1:  # a batch of one: complete_jobs is complete_job
                kinds = ("bare", "hub", "hub-fused")
            # interleaved rounds, the order rotated each round: the load of this shared
            # machine drifts by 2x within minutes, so only the same round compares
            runs: dict[str, list[float]] = {kind: [] for kind in kinds}
            for r in range(args.rounds):
                for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
                    runs[kind].append(drain_rate(url, kind, args.jobs, args.threads, batch))
            for kind in kinds:
                rates[kind, batch] = statistics.median(runs[kind])
            target = 0.8 if batch == 1 else 0.6  # of the bare loop claiming as many
            bare = rates["bare", batch]
            for kind in kinds[1:]:
                hub = rates[kind, batch]
                ratios = [h / b for h, b in zip(runs[kind], runs["bare"], strict=True)]
                ratio = statistics.median(ratios)
                rows.append(
                    [
                        f"claim x{batch} + {HUB_MODES[kind]}",
                        f"{bare:,.0f}",
                        f"{hub:,.0f}",
                        f"{ratio:.2f}",
                        " ".join(f"{x:.2f}" for x in ratios),
                        f">= {target} of bare",
                        "met" if ratio >= target else "NOT met",
                    ]
                )
        if 1 in sections:
            print(
                f"\n1. throughput (jobs/s, median of {args.rounds} interleaved rounds; "
                "hub/bare: median of each round's ratio)"
            )
            print(
                tabulate(
                    rows,
                    headers=[
                        "path",
                        "bare SKIP LOCKED",
                        "hub",
                        "hub/bare",
                        "each round",
                        "target",
                        "verdict",
                    ],
                )
            )

        rows = []
        for mode in ("notify", "poll") if 2 in sections else ():
            result = {}
            for kind in ("bare", "hub"):
                lat = latencies(url, kind, mode, args.latency_jobs, args.poll_interval)
                result[kind] = (pct(lat, 50) * 1000, pct(lat, 95) * 1000)
            (bp50, bp95), (hp50, hp95) = result["bare"], result["hub"]
            label = (
                "NOTIFY (LISTEN)"
                if mode == "notify"
                else f"poll-only ({args.poll_interval * 1000:.0f} ms)"
            )
            verdict = ("met" if hp50 <= 10 else "NOT met") if mode == "notify" else "(no target)"
            rows.append(
                [
                    label,
                    f"{bp50:.1f} / {bp95:.1f}",
                    f"{hp50:.1f} / {hp95:.1f}",
                    f"{hp50 / bp50:.2f}",
                    "p50 <= 10 ms" if mode == "notify" else "-",
                    verdict,
                ]
            )
        if 2 in sections:
            print("\n2. enqueue-to-claim latency, p50 / p95 (ms)")
            print(
                tabulate(rows, headers=["mode", "bare", "hub", "hub/bare p50", "target", "verdict"])
            )

        if 3 in sections:
            seconds, lease = dead_worker_seconds(url)
            print(
                "\n3. dead worker -> job reclaimable (claim path, lease renewed just before death)"
            )
            print(
                tabulate(
                    [
                        [
                            f"lease {lease} s, rescuer polling every 100 ms",
                            f"{seconds:.1f} s",
                            "<= 30 s",
                            "met" if seconds <= 30 else "NOT met",
                        ]
                    ],
                    headers=["scenario", "time", "target", "verdict"],
                )
            )

        if 4 in sections:
            peers.print_workers(
                url,
                args.worker_jobs,
                rates.get(("bare", 1)),
                rates.get(("bare", 10)),
                args.worker_rounds,
            )
        if 5 in sections:
            print_backlog(url, args.jobs, args.backlog, args.rounds)


def print_backlog(url: str, jobs: int, backlog: int, rounds: int = 3) -> None:
    """Section 5: one claimer, claim + complete one at a time, with and without a
    backlog of jobs waiting for their retry (scheduled, as a failed attempt leaves them);
    ``rounds`` interleaved rounds, the median of each and of each round's ratio."""
    runs: dict[int, list[float]] = {0: [], backlog: []}
    for r in range(rounds):  # interleaved, the order swapped each round
        for waiting in (0, backlog) if r % 2 == 0 else (backlog, 0):
            reset(url)
            with psycopg.connect(url, autocommit=True) as conn:
                if waiting:
                    conn.execute(
                        "SELECT count(func_submit_job(jsonb_build_object('user_id', 'u1', "
                        "'job_type', 'bench', 'run_in_seconds', 3600, "
                        "'payload', jsonb_build_object('command', 'true')))) "
                        "FROM generate_series(1, %s)",
                        [waiting],
                    )
                conn.execute(HUB_FILL, [jobs // 4])
                conn.execute("VACUUM ANALYZE job_queue")
                conn.execute("VACUUM ANALYZE jobs")
            start = time.perf_counter()
            done = hub_worker(url, "backlog", 1)()
            runs[waiting].append(done / (time.perf_counter() - start))
    rates = {waiting: statistics.median(values) for waiting, values in runs.items()}
    ratios = [b / n for b, n in zip(runs[backlog], runs[0], strict=True)]
    ratio = statistics.median(ratios)
    print(f"\n5. claim + complete, one claimer, behind {backlog:,} jobs waiting for a retry")
    print(
        tabulate(
            [
                [
                    f"{rates[0]:,.0f}",
                    f"{rates[backlog]:,.0f}",
                    f"{ratio:.2f}",
                    " ".join(f"{x:.2f}" for x in ratios),
                    ">= 0.9",
                    "met" if ratio >= 0.9 else "NOT met",
                ]
            ],
            headers=[
                "no backlog (jobs/s)",
                "backlog (jobs/s)",
                "ratio",
                "each round",
                "target",
                "verdict",
            ],
        )
    )


if __name__ == "__main__":
    main()
