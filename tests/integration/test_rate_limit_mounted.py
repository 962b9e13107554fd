"""The mountable pieces in a team's own FastAPI app, served by a real uvicorn: the seed's
``RateLimitMiddleware(calls, period, rules, enable_audit)`` with its own rules, the seed's
``get_rate_limiter`` API inside a route, and ``BodyLimitMiddleware`` with per-prefix caps
(one prefix exempt, as the hub exempts its S3 storage)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI, Request

from orchestrator.config import load_settings
from orchestrator.daemon.config import EnterpriseConfig
from orchestrator.server import (
    BodyLimitMiddleware,
    ClientAddressMiddleware,
    HubState,
    RateLimitMiddleware,
    get_rate_limiter,
)


def team_app(db_url: str) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.hub.start()
        yield
        await app.state.hub.stop()

    app = FastAPI(lifespan=lifespan)
    app.state.hub = HubState(
        load_settings(None), db_url, "test db", EnterpriseConfig(), run_daemon=False
    )

    @app.post("/expensive")
    @app.get("/expensive")
    async def expensive() -> dict[str, str]:
        return {"ok": "yes"}

    @app.put("/s3/{key}")
    async def s3(key: str) -> dict[str, str]:
        return {"stored": key}

    @app.post("/echo")
    @app.post("/upload")
    @app.post("/big")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/stream")
    async def stream(request: Request) -> dict[str, int]:
        app.state.seen = 0
        async for chunk in request.stream():
            app.state.seen += len(chunk)
        return {"received": app.state.seen}

    @app.get("/seen")
    async def seen() -> dict[str, int]:
        return {"seen": app.state.seen}

    @app.get("/quota/{key}")
    async def quota(key: str) -> dict[str, object]:
        limiter = await get_rate_limiter(max_requests=3, window_seconds=60, key_prefix="team")
        async with limiter.track(key) as allowed:
            usage = await limiter.get_usage(key)
        return {"allowed": allowed, **usage}

    app.add_middleware(
        RateLimitMiddleware,
        calls=100,
        period=60,
        rules=[
            (r"^/expensive$", 2, 300, ["POST"]),
            {"id": "s3_team", "pattern": r"^/s3/", "calls": 1, "period": 60, "s3": True},
        ],
        enable_audit=True,
        exempt_cidrs=["127.0.0.9/32"],
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=1024, limits={"/upload": None, "/big": 4096})
    app.add_middleware(ClientAddressMiddleware)
    return app


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(team_app(db_url), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def test_team_rules_come_first_and_s3_paths_answer_slow_down(served, db_url):
    with httpx.Client(base_url=served, timeout=30) as client:
        codes = [client.post("/expensive").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = client.post("/expensive")
        assert refused.json() == {"detail": "Rate limit exceeded. Please try again later."}
        assert refused.headers["x-ratelimit-limit"] == "2"
        assert 1 <= int(refused.headers["retry-after"]) <= 300
        # GET is not in the team rule's methods: the default rule (100) applies.
        get = client.get("/expensive")
        assert get.status_code == 200 and get.headers["x-ratelimit-limit"] == "100"
        assert client.put("/s3/a").status_code == 200
        slow = client.put("/s3/b")
        assert slow.status_code == 503 and "<Code>SlowDown</Code>" in slow.text
        assert slow.headers["content-type"] == "application/xml"
        assert int(slow.headers["retry-after"]) >= 1
    with psycopg.connect(db_url) as conn:
        rules = conn.execute(
            "SELECT details->>'rule' FROM audit_log WHERE event_type = 'rate_limited' ORDER BY id"
        ).fetchall()
    assert rules == [("^/expensive$",), ("s3_team",)]


def test_the_seed_limiter_api_inside_a_route(served, db_url):
    with httpx.Client(base_url=served, timeout=30) as client:
        answers = [client.get("/quota/alice").json() for _ in range(4)]
    assert [a["allowed"] for a in answers] == [True, True, True, False]
    assert [a["count"] for a in answers] == [1, 2, 3, 3]
    assert answers[-1]["limit"] == 3 and 0 < answers[-1]["reset_in_seconds"] <= 60
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT bucket, cardinality(hits) FROM rate_limit_buckets WHERE bucket LIKE 'api:%'"
        ).fetchall()
    assert stored == [("api:team|alice", 3)]


def test_body_caps_per_prefix_counting_streamed_bytes(served):
    with httpx.Client(base_url=served, timeout=30) as client:
        assert client.post("/echo", content=b"x" * 1024).json() == {"received": 1024}
        declared = client.post("/echo", content=b"x" * 1025)
        assert declared.status_code == 413
        body = declared.json()
        assert list(body) == ["detail"] and "\n" not in body["detail"]
        assert "at most 1024 bytes" in body["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(5):
                yield b"y" * 600

        streamed = client.post("/echo", content=chunks())
        assert streamed.status_code == 413 and "at most 1024 bytes" in streamed.json()["detail"]
        # A handler reading the stream never gets the chunk that crosses the cap.
        assert client.post("/stream", content=chunks()).status_code == 413
        assert client.get("/seen").json()["seen"] <= 1024
        # An exempt prefix takes any size; a prefix with its own cap uses it.
        assert client.post("/upload", content=b"z" * 200_000).json() == {"received": 200_000}
        assert client.post("/big", content=b"z" * 4096).json() == {"received": 4096}
        assert client.post("/big", content=b"z" * 4097).status_code == 413
        # The server is fine afterwards.
        assert client.post("/echo", content=b"ok").json() == {"received": 2}


def test_a_client_killed_mid_body_leaves_the_server_serving(served):
    host, port = served.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n" + b"a" * 300)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"400\r\n" + b"b" * 1024 + b"\r\n400\r\n" + b"b" * 100)
    with httpx.Client(base_url=served, timeout=30) as client:
        assert client.post("/echo", content=b"fine").json() == {"received": 4}


def test_exempt_networks_are_never_limited(served):
    transport = httpx.HTTPTransport(local_address="127.0.0.9")
    with httpx.Client(base_url=served, timeout=30, transport=transport) as exempt:
        answers = [exempt.post("/expensive") for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert all("x-ratelimit-limit" not in a.headers for a in answers)
    with httpx.Client(base_url=served, timeout=30) as other:
        assert [other.post("/expensive").status_code for _ in range(3)] == [200, 200, 429]
