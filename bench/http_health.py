"""bench/http_health: ``/health/live`` through the hub's whole middleware stack under a
paced load, against a bare Starlette route on the same uvicorn, in the same run.

Three targets, each a real process on a loopback port, loaded one after the other at
``--rate`` requests/s for ``--seconds`` (bench/http_load.py's paced raw-socket client):

1. bare: a Starlette app with one route answering ``{"status": "ok"}``, served by the
   same uvicorn with the same options as ``orchestrator serve`` (h11, no proxy headers,
   no server header, no access log) — the floor;
2. hub: ``orchestrator serve --no-daemon`` (correlation id, HTTP metrics, error
   handlers, FastAPI routing) on its own embedded PostgreSQL;
3. hub, database stopped: the same process after its PostgreSQL was stopped — liveness
   must not touch the database, so nothing may change.

Targets: hub p99 <= 2.5 x bare p99; hub with the database stopped within the same bound
(and 200 on every request). ``--rounds`` repeats the three (interleaved) and reports
the median of each. Load average is printed with the result (the machine is shared).

    python bench/http_health.py [--rate 200] [--seconds 10] [--connections 8] [--rounds 1]
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
from orchestrator.db.embedded import start_embedded

BARE_APP = """
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def live(request):
    return JSONResponse({"status": "ok"})

app = Starlette(routes=[Route("/health/live", live)])
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), proxy_headers=False,
            server_header=False, access_log=False, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_live(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not answer within 60 s")


def load(port: int, args: argparse.Namespace) -> LoadResult:
    return asyncio.run(
        paced_load("127.0.0.1", port, "/health/live", args.rate, args.seconds, args.connections)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, list[LoadResult]] = {"bare": [], "hub": [], "hub, database stopped": []}
    with tempfile.TemporaryDirectory(prefix="hub-bench-http-") as tmp:
        bare_port, hub_port = free_port(), free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)])
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ORCHESTRATOR_", "DATABASE_URL"))
        }
        for _ in range(args.rounds):
            server = start_embedded(Path(tmp) / "pg")
            with __import__("psycopg").connect(server.url, autocommit=True) as conn:
                migrate.migrate(conn)
            hub = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orchestrator",
                    "serve",
                    "--no-daemon",
                    "--port",
                    str(hub_port),
                ],
                env={
                    **env,
                    "DATABASE_URL": server.url,
                    "ORCHESTRATOR_LOG_LEVEL": "WARNING",
                    "ORCHESTRATOR_SECRETS_FILE": str(Path(tmp) / "none.json"),
                },
                cwd=tmp,
            )
            try:
                wait_live(bare_port, bare)
                wait_live(hub_port, hub)
                results["bare"].append(load(bare_port, args))
                results["hub"].append(load(hub_port, args))
                server.stop()
                ready = httpx.get(f"http://127.0.0.1:{hub_port}/health/ready", timeout=5)
                assert ready.status_code == 503, "the database did not stop"
                results["hub, database stopped"].append(load(hub_port, args))
            finally:
                hub.terminate()
                hub.wait(30)
                server.stop()
        bare.terminate()
        bare.wait(10)
    base_p99 = statistics.median(r.pct(99) for r in results["bare"])
    rows = []
    for name, runs in results.items():
        p50 = statistics.median(r.pct(50) for r in runs)
        p99 = statistics.median(r.pct(99) for r in runs)
        answered = sum(len(r.latencies) for r in runs)
        ok = sum(r.statuses.get(200, 0) for r in runs)
        errors = sum(sum(r.errors.values()) for r in runs)
        ratio = p99 / base_p99
        verdict = (
            "-"
            if name == "bare"
            else ("met" if ratio <= 2.5 and ok == answered and not errors else "NOT met")
        )
        rows.append(
            [
                name,
                f"{statistics.median(r.rate for r in runs):.0f}",
                f"{p50:.2f}",
                f"{p99:.2f}",
                f"{max(max(r.latencies) for r in runs) * 1000:.1f}",
                f"{ok}/{answered}",
                errors,
                f"{ratio:.2f}",
                "<= 2.50" if name != "bare" else "",
                verdict,
            ]
        )
    print(
        f"\n/health/live at {args.rate:.0f} req/s for {args.seconds:.0f} s over "
        f"{args.connections} keep-alive connections, {args.rounds} round(s) "
        "(latency in ms, from each request's due time)"
    )
    print(
        tabulate(
            rows,
            headers=[
                "target",
                "req/s",
                "p50",
                "p99",
                "max",
                "200s",
                "errors",
                "p99 / bare",
                "target",
                "verdict",
            ],
        )
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
