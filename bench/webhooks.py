"""bench/webhooks: provider webhook -> job ``completed``, latency and throughput of one
``orchestrator serve`` instance, against baselines measured in the same run.

Each webhook is a Standard Webhooks signed POST of ``{"id", "job_id", "status":
"succeeded"}`` for a distinct dispatched (running) job; the hub answers after the
transaction that records the delivery and completes the job has committed, so the
round trip *is* webhook -> job completed (checked afterwards in SQL: every job
completed, one delivery row each). Bodies are signed before the clock starts; the
client is raw asyncio sockets on keep-alive connections (an httpx client is the
bottleneck on this 2-core machine, bench/http_load.py).

Baselines, same run, same client, same connections:

* ``GET /health/live`` through the same middleware stack (the HTTP floor);
* ``func_record_provider_status(job, 'completed')`` called directly through the hub's
  own asyncpg executor (the database floor: what applying the status costs without
  HTTP), and ``func_record_webhook`` the same way (what the once-only record adds).

Rows: p50 latency of sequential webhooks vs (HTTP floor p50 + DB floor p50), target
<= 2.0x; webhooks/s with ``--concurrency`` connections vs ``func_record_webhook``
calls/s made directly by as many callers on a pool of 4 connections (the hub's pool),
target >= 0.5x (what HTTP, signature checks and the route may cost at most); the
``/health/live`` rate at the same concurrency is printed beside them. The bench makes
its own embedded PostgreSQL in a temp directory (never touches another database).

    python bench/webhooks.py [--latency-n 300] [--throughput-n 3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import yaml
from standardwebhooks.webhooks import Webhook
from tabulate import tabulate

from orchestrator.db import migrate
from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.db.calls import Call
from orchestrator.db.embedded import start_embedded
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls
from orchestrator.providers.calls import record_webhook

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dispatched_jobs(url: str, n: int) -> list[str]:
    """``n`` jobs of provider ``cloud``, claimed for dispatch (running)."""
    ex = PsycopgExecutor.connect(url)
    try:
        ex.run(calls.upsert_hub_user("bench", "org"))
        ids: list[str] = []
        for start in range(0, n, 1000):
            batch = min(1000, n - start)
            ex.run(
                calls.submit_jobs(
                    [
                        calls.job_object("bench", "render", {}, provider="cloud")
                        for _ in range(batch)
                    ]
                )
            )
        while len(ids) < n:  # a claim may return fewer than asked: claim until all are
            claim = ex.run(
                calls.claim_jobs("provider:cloud", 1000, lease_seconds=86_400, provider="cloud")
            )
            if not claim.jobs:
                raise SystemExit(f"only {len(ids)} of {n} jobs could be claimed")
            ids.extend(str(j.job_id) for j in claim.jobs)
        return ids
    finally:
        ex.close()


def signed_request(port: int, job_id: str, index: int) -> bytes:
    body = json.dumps({"id": f"r-{index}", "job_id": job_id, "status": "succeeded"}).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = Webhook(SECRET).sign(msg_id, now, body)
    head = (
        f"POST /api/webhooks/cloud HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"webhook-id: {msg_id}\r\nwebhook-timestamp: {int(now.timestamp())}\r\n"
        f"webhook-signature: {signature}\r\n\r\n"
    )
    return head.encode() + body


def live_request(port: int) -> bytes:
    return f"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


class Conn:
    """One keep-alive HTTP/1.1 connection: send raw bytes, read one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(lines[0].split(" ")[1])

    def close(self) -> None:
        self.writer.close()


async def sequential(port: int, requests: list[bytes]) -> tuple[list[float], int]:
    conn = await Conn.open(port)
    latencies, bad = [], 0
    for raw in requests:
        started = time.perf_counter()
        status = await conn.request(raw)
        latencies.append(time.perf_counter() - started)
        bad += status != 200
    conn.close()
    return latencies, bad


BAD: dict[int, int] = {}


async def concurrent(port: int, requests: list[bytes], connections: int) -> tuple[float, int]:
    queue = list(reversed(requests))
    conns = [await Conn.open(port) for _ in range(connections)]
    bad = 0

    async def drain(conn: Conn) -> None:
        nonlocal bad
        while queue:
            raw = queue.pop()
            status = await conn.request(raw)
            if status != 200:
                bad += 1
                BAD[status] = BAD.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(drain(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return len(requests) / elapsed, bad


def direct_webhook(job: str, i: int) -> Call[dict[str, object]]:
    return record_webhook(
        "cloud", f"direct-{i}", provider_job_id="r", job_id=job, status="completed", details={}
    )


async def db_floor(url: str, jobs: list[str]) -> tuple[list[float], list[float]]:
    """Per call through the hub's own asyncpg executor (pooler-safe, unnamed statements),
    interleaved, the first tenth dropped as warm-up: ``func_record_provider_status``
    alone, and ``func_record_webhook`` (delivery row + the same status call)."""
    floor, record = [], []
    async with await AsyncpgExecutor.connect(url, max_size=1) as ex:
        for i in range(0, len(jobs) - 1, 2):
            started = time.perf_counter()
            await ex.run(calls.record_provider_status(jobs[i], "completed", "r", {}))
            floor.append(time.perf_counter() - started)
            started = time.perf_counter()
            await ex.run(direct_webhook(jobs[i + 1], i))
            record.append(time.perf_counter() - started)
    skip = len(floor) // 10
    return floor[skip:], record[skip:]


async def db_rate(url: str, jobs: list[str], concurrency: int) -> float:
    """``func_record_webhook`` calls/s with ``concurrency`` callers on a pool of 4 (the
    hub's own pool size): the database's ceiling for the HTTP route."""
    queue = list(enumerate(jobs))
    async with await AsyncpgExecutor.connect(url, max_size=4) as ex:

        async def drain() -> None:
            while queue:
                i, job = queue.pop()
                await ex.run(direct_webhook(job, len(jobs) * 10 + i))

        started = time.perf_counter()
        await asyncio.gather(*(drain() for _ in range(concurrency)))
        return len(jobs) / (time.perf_counter() - started)


def p50_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-n", type=int, default=300)
    parser.add_argument("--throughput-n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="hub-bench-webhooks-") as tmp:
        server = start_embedded(Path(tmp) / "pg")
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                migrate.migrate(conn)
            n_lat, n_thr = args.latency_n, args.throughput_n
            jobs = dispatched_jobs(server.url, 3 * n_lat + 2 * n_thr)
            floor_jobs, lat_jobs = jobs[: 2 * n_lat], jobs[2 * n_lat : 3 * n_lat]
            thr_jobs, rate_jobs = jobs[3 * n_lat : 3 * n_lat + n_thr], jobs[3 * n_lat + n_thr :]
            config = Path(tmp) / "hub.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "background": {"job_status_polling": {"enabled": False}},
                        "providers": {"cloud": {"base_url": "http://127.0.0.1:9"}},
                    }
                )
            )
            port = free_port()
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("ORCHESTRATOR_", "DATABASE_URL", "WEBHOOK_SECRET"))
            }
            hub = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orchestrator",
                    "serve",
                    "--no-daemon",
                    "--port",
                    str(port),
                    "--config",
                    str(config),
                ],
                env={
                    **env,
                    "DATABASE_URL": server.url,
                    "ORCHESTRATOR_LOG_LEVEL": "WARNING",
                    "ORCHESTRATOR_SECRETS_FILE": str(Path(tmp) / "none.json"),
                    "WEBHOOK_SECRET_CLOUD": SECRET,
                },
                cwd=tmp,
            )
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).is_success:
                            break
                    except httpx.HTTPError:
                        pass
                    if hub.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the hub did not start")
                    time.sleep(0.1)
                lat_requests = [signed_request(port, j, i) for i, j in enumerate(lat_jobs)]
                thr_requests = [signed_request(port, j, n_lat + i) for i, j in enumerate(thr_jobs)]
                lives = [live_request(port)] * n_lat
                asyncio.run(sequential(port, lives[:50]))  # warm-up
                live_lat, _ = asyncio.run(sequential(port, lives))
                floor_lat, direct_lat = asyncio.run(db_floor(server.url, floor_jobs))
                hook_lat, hook_bad = asyncio.run(sequential(port, lat_requests))
                live_rate, _ = asyncio.run(
                    concurrent(port, [live_request(port)] * n_thr, args.concurrency)
                )
                hook_rate, thr_bad = asyncio.run(concurrent(port, thr_requests, args.concurrency))
                direct_rate = asyncio.run(db_rate(server.url, rate_jobs, args.concurrency))
            finally:
                hub.terminate()
                hub.wait(30)
            with psycopg.connect(server.url) as conn:
                completed = conn.execute(
                    "SELECT count(*) FROM jobs WHERE status = 'completed'"
                ).fetchone()[0]
                deliveries = conn.execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0]
        finally:
            server.stop()
    assert completed == len(jobs), f"{completed} of {len(jobs)} jobs completed"
    assert hook_bad == 0 and thr_bad == 0, f"answers other than 200: {BAD}"
    assert deliveries == 2 * n_lat + 2 * n_thr, (deliveries, n_lat, n_thr, completed, len(jobs))
    floors = p50_ms(live_lat) + p50_ms(floor_lat)
    lat_ratio = p50_ms(hook_lat) / floors
    thr_ratio = hook_rate / direct_rate
    rows = [
        ["GET /health/live (HTTP floor), p50 ms", f"{p50_ms(live_lat):.2f}", "", "", ""],
        [
            "func_record_provider_status direct (DB floor), p50 ms",
            f"{p50_ms(floor_lat):.2f}",
            "",
            "",
            "",
        ],
        [
            "func_record_webhook direct (no HTTP), p50 ms",
            f"{p50_ms(direct_lat):.2f}",
            f"{p50_ms(direct_lat) / p50_ms(floor_lat):.2f} x DB floor",
            "",
            "",
        ],
        [
            "webhook -> job completed, p50 ms (sequential)",
            f"{p50_ms(hook_lat):.2f}",
            f"{lat_ratio:.2f} x floors",
            "<= 2.00 x",
            "met" if lat_ratio <= 2.0 else "NOT met",
        ],
        [
            "webhook -> job completed, p99 ms",
            f"{statistics.quantiles(hook_lat, n=100)[98] * 1000:.2f}",
            "",
            "",
            "",
        ],
        [
            f"GET /health/live, req/s ({args.concurrency} connections)",
            f"{live_rate:.0f}",
            "",
            "",
            "",
        ],
        [
            f"func_record_webhook direct, calls/s ({args.concurrency} callers, pool of 4)",
            f"{direct_rate:.0f}",
            "",
            "",
            "",
        ],
        [
            f"webhooks/s sustained ({args.concurrency} connections)",
            f"{hook_rate:.0f}",
            f"{thr_ratio:.2f} x direct",
            ">= 0.50 x",
            "met" if thr_ratio >= 0.5 else "NOT met",
        ],
    ]
    print(
        f"\n{n_lat} sequential webhooks, {n_thr} concurrent; every job completed "
        f"({completed}), one delivery row each ({deliveries}, {n_lat + n_thr} of them direct calls)"
    )
    print(tabulate(rows, headers=["measure", "value", "ratio", "target", "verdict"]))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
