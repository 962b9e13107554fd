"""bench/rate_limit: the PostgreSQL rate limiter against a ``SELECT 1`` round trip, and a
limited route under paced load, in the same run on a fresh embedded PostgreSQL.

1. Round trip: one decision at a time (``SqlLimiter.hit`` over the hub's asyncpg
   executor: pool acquire, ``func_rate_limit_hit``, jsonb decode), interleaved with
   ``SELECT 1`` on the same pool. Target: decision p50 <= 2 x ``SELECT 1`` p50.
2. Throughput from one instance: 16 concurrent callers on the hub's pool of 4
   connections for ``--seconds``, decisions on 500 client keys (limit 100/60, as the
   default rule), against ``SELECT 1`` the same way. Target: >= 1,000 decisions/s.
   One hot key (every caller on one bucket, 100/60, so nearly all refused and audited
   once per window) is shown for information: it serialises on the bucket's row lock.
3. A limited route at ``--rate`` requests/s (bench/http_load.py's paced raw-socket
   client over 8 connections, latency from each request's due time) on
   ``orchestrator serve --no-daemon``: limiter off (``RATE_LIMIT_CALLS=0``, the
   baseline); limiter on with 8 client addresses (127.0.0.10-17), every request allowed
   (10000/60); one client, every request allowed (its one bucket grows to ``rate x
   seconds`` hits and every decision queues on its row lock: the sliding log's worst
   case); one client flooding at 100/60 (nearly every request refused). Target: p99 <=
   30 ms with the limiter on.

    python bench/rate_limit.py [--seconds 5] [--rate 200] [--http-seconds 10] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import LoadResult, paced_load

from orchestrator.db import migrate
from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.db.embedded import start_embedded
from orchestrator.server.ratelimit.limiter import SqlLimiter

KEYS = 500
CALLERS = 16
PATH = "/bench/limited"  # no such route: the limiter and the router's 404, nothing else


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000


async def round_trips(
    db: AsyncpgExecutor, limiter: SqlLimiter, count: int
) -> dict[str, list[float]]:
    """Alternating single decisions and ``SELECT 1``s, one at a time."""
    times: dict[str, list[float]] = {"select1": [], "decision": []}
    for i in range(count):
        started = time.perf_counter()
        async with db.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        times["select1"].append(time.perf_counter() - started)
        started = time.perf_counter()
        decision = await limiter.hit(db, f"rt|10.0.{i % KEYS // 256}.{i % 256}", 100, 60)
        times["decision"].append(time.perf_counter() - started)
        assert decision.shared, "the database did not answer"
    return times


async def throughput(db: AsyncpgExecutor, limiter: SqlLimiter, kind: str, seconds: float) -> float:
    """Operations per second of ``CALLERS`` concurrent callers for ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def caller(n: int) -> None:
        nonlocal done
        i = n
        while time.perf_counter() < stop:
            if kind == "select1":
                async with db.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
            elif kind == "hot":
                await limiter.hit(db, "hot|10.9.9.9", 100, 60, {"actor_ip": "10.9.9.9"})
            else:
                await limiter.hit(db, f"tp|10.1.{i % KEYS // 256}.{i % 256}", 100, 60)
            i += CALLERS
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(caller(n) for n in range(CALLERS)))
    return done / (time.perf_counter() - began)


async def sql_part(url: str, args: argparse.Namespace) -> dict[str, object]:
    db = await AsyncpgExecutor.connect(url, max_size=4, min_size=4)
    limiter = SqlLimiter()
    try:
        await round_trips(db, limiter, 200)  # warm-up
        times = await round_trips(db, limiter, args.round_trips)
        rates = {}
        for kind in ("select1", "decision", "hot", "select1 again"):
            rates[kind] = await throughput(db, limiter, kind.split()[0], args.seconds)
        errors = limiter.metrics.backend_errors._value.get()
    finally:
        await db.close()
    return {"times": times, "rates": rates, "errors": errors}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_and_load(
    url: str, tmp: str, calls: int, args: argparse.Namespace, clients: int = 1
) -> LoadResult:
    with __import__("psycopg").connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE rate_limit_buckets")  # each run starts with empty windows
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "RATE_LIMIT"))}
    env.update(
        DATABASE_URL=url,
        RATE_LIMIT_CALLS=str(calls),
        RATE_LIMIT_PERIOD="60",
        ORCHESTRATOR_LOG_LEVEL="WARNING",
        ORCHESTRATOR_SECRETS_FILE=str(Path(tmp) / "none.json"),
    )
    hub = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", "--no-daemon", "--port", str(port)],
        env=env,
        cwd=tmp,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if hub.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("orchestrator serve did not start")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # Connections leave from ``clients`` loopback addresses: one bucket per client.
        sources = [f"127.0.0.{10 + i}" for i in range(clients)]
        return asyncio.run(
            paced_load("127.0.0.1", port, PATH, args.rate, args.http_seconds, 8, sources)
        )
    finally:
        hub.terminate()
        hub.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="per throughput run")
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--http-seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="HTTP runs per row (median)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="hub-bench-ratelimit-") as tmp:
        server = start_embedded(Path(tmp) / "pg")
        try:
            with __import__("psycopg").connect(server.url, autocommit=True) as conn:
                migrate.migrate(conn)
            sql = asyncio.run(sql_part(server.url, args))
            scenarios = {
                "limiter off (RATE_LIMIT_CALLS=0)": (0, 8),
                "limiter on, 8 clients, all allowed (10000/60)": (10000, 8),
                "limiter on, 1 client, all allowed (10000/60)": (10000, 1),
                "limiter on, 1 client flooding (100/60)": (100, 1),
            }
            http: dict[str, list[LoadResult]] = {name: [] for name in scenarios}
            for _ in range(args.rounds):  # interleaved, so a noisy minute hits every row
                for name, (calls, clients) in scenarios.items():
                    http[name].append(serve_and_load(server.url, tmp, calls, args, clients))
        finally:
            server.stop()

    times, rates = sql["times"], sql["rates"]
    assert isinstance(times, dict) and isinstance(rates, dict)
    s50, d50 = pct(times["select1"], 50), pct(times["decision"], 50)
    s99, d99 = pct(times["select1"], 99), pct(times["decision"], 99)
    base_rate = statistics.fmean([rates["select1"], rates["select1 again"]])
    rows = [
        ["SELECT 1 round trip", f"p50 {s50:.3f} ms, p99 {s99:.3f} ms", "1.00", "baseline", "-"],
        [
            "limiter decision round trip",
            f"p50 {d50:.3f} ms, p99 {d99:.3f} ms",
            f"{d50 / s50:.2f}",
            "<= 2.00 x SELECT 1 (p50)",
            "met" if d50 / s50 <= 2 else "NOT met",
        ],
        [
            f"SELECT 1/s ({CALLERS} callers, pool of 4)",
            f"{base_rate:,.0f}/s",
            "1.00",
            "baseline",
            "-",
        ],
        [
            f"decisions/s, {KEYS} keys, one instance",
            f"{rates['decision']:,.0f}/s",
            f"{rates['decision'] / base_rate:.2f}",
            ">= 1,000/s",
            "met" if rates["decision"] >= 1000 else "NOT met",
        ],
        [
            "decisions/s, one hot key (refused, audited)",
            f"{rates['hot']:,.0f}/s",
            f"{rates['hot'] / base_rate:.2f}",
            "(information)",
            "-",
        ],
    ]
    off_p99 = statistics.median(r.pct(99) for r in http["limiter off (RATE_LIMIT_CALLS=0)"])
    for name, runs in http.items():
        p50 = statistics.median(r.pct(50) for r in runs)
        p99 = statistics.median(r.pct(99) for r in runs)
        counted: dict[int, int] = {}
        for run in runs:
            for status, n in run.statuses.items():
                counted[status] = counted.get(status, 0) + n
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(counted.items()))
        errors = sum(sum(r.errors.values()) for r in runs)
        limited = name.startswith("limiter on")
        rows.append(
            [
                f"{PATH} at {args.rate:.0f}/s: {name}",
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms ({statuses}; errors {errors})",
                f"{p99 / off_p99:.2f}",
                "p99 <= 30 ms" if limited else "baseline",
                ("met" if p99 <= 30 and not errors else "NOT met") if limited else "-",
            ]
        )
    print(
        f"\nrate limiter, {args.round_trips} interleaved round trips, {args.seconds:g} s per "
        f"throughput run, {args.http_seconds:g} s per HTTP run, median of {args.rounds} "
        f"round(s) per HTTP row; backend errors: {sql['errors']}"
    )
    print(tabulate(rows, headers=["measure", "result", "ratio", "target", "verdict"]))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
