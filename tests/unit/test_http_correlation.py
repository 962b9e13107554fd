"""Outbound HTTP carries the caller's correlation id, read when each request is sent."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.logs import (
    CORRELATION_HEADER,
    get_async_client,
    get_client,
    get_correlation_id,
    set_correlation_id,
)


class Recorder(BaseHTTPRequestHandler):
    """Answers 200 and notes (path, X-Correlation-ID) of every request."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get(CORRELATION_HEADER)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        """Quiet: the default writes every request to stderr."""


class Server(ThreadingHTTPServer):
    """A listen backlog above the default 5, so 8 threads connecting at once don't wait."""

    request_queue_size = 64


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1; yields (base URL, list of (path, header))."""
    httpd = Server(("127.0.0.1", 0), Recorder)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def isolated(fn):
    """Runs ``fn`` in a copy of the context, so its correlation ids stay in the test."""
    return contextvars.copy_context().run(fn)


def test_sync_client_sends_the_id_current_at_each_request(server):
    """Created under id A, the client sends A, then B after the caller switches to B."""
    url, seen = server

    def body():
        set_correlation_id("A")
        with get_client(trust_env=False) as client:
            client.get(f"{url}/first")
            set_correlation_id("B")
            client.get(f"{url}/second")

    isolated(body)
    assert seen == [("/first", "A"), ("/second", "B")]


def test_sync_client_without_an_id_generates_one_and_keeps_it(server):
    """With no id yet, the request gets a fresh one that the caller's later logs share."""
    url, seen = server

    def body():
        with get_client(trust_env=False) as client:
            client.get(f"{url}/x")
        return get_correlation_id()

    kept = isolated(body)
    assert seen == [("/x", kept)] and len(kept) == 32


def test_one_sync_client_shared_by_threads_sends_each_threads_id(server):
    """8 threads share one pooled client; every request carries its own thread's id."""
    url, seen = server
    client = get_client(trust_env=False)
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        set_correlation_id(f"thread-{n}")
        barrier.wait()
        for i in range(5):
            client.get(f"{url}/thread-{n}/{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert len(seen) == 40
    for path, header in seen:
        assert header == path.split("/")[1]


def test_async_client_shared_by_concurrent_tasks_sends_each_tasks_id(server):
    """Created under id A; two tasks with their own ids interleave; each request is right."""
    url, seen = server

    async def work(client, barrier: asyncio.Barrier, name: str) -> None:
        set_correlation_id(name)
        for i in range(10):
            await barrier.wait()  # both tasks have a request in flight in every round
            await client.get(f"{url}/{name}/{i}")

    async def main() -> None:
        set_correlation_id("A")
        async with get_async_client(trust_env=False) as client:
            barrier = asyncio.Barrier(2)
            await asyncio.gather(work(client, barrier, "task-1"), work(client, barrier, "task-2"))
            await client.get(f"{url}/A/main")

    asyncio.run(main())
    assert len(seen) == 21
    for path, header in seen:
        assert header == path.split("/")[1]
    assert {path.split("/")[1] for path, _ in seen} == {"task-1", "task-2", "A"}


def test_explicit_header_is_kept(server):
    """A request that sets X-Correlation-ID itself keeps its value, sync and async."""
    url, seen = server

    async def async_body() -> None:
        set_correlation_id("ambient")
        async with get_async_client(trust_env=False) as client:
            await client.get(f"{url}/async", headers={CORRELATION_HEADER: "explicit-2"})

    def body():
        set_correlation_id("ambient")
        with get_client(trust_env=False) as client:
            client.get(f"{url}/sync", headers={CORRELATION_HEADER: "explicit-1"})
        asyncio.run(async_body())

    isolated(body)
    assert seen == [("/sync", "explicit-1"), ("/async", "explicit-2")]


def test_user_event_hooks_still_run_and_see_the_header(server):
    """Hooks passed by the caller run (after ours) and observe the correlation header."""
    url, seen = server
    calls: list[tuple[str, str | None]] = []

    def on_request(request):
        calls.append(("request", request.headers.get(CORRELATION_HEADER)))

    def on_response(response):
        calls.append(("response", str(response.status_code)))

    async def on_request_async(request):
        calls.append(("async request", request.headers.get(CORRELATION_HEADER)))

    async def on_response_async(response):
        calls.append(("async response", str(response.status_code)))

    async def async_body() -> None:
        client = get_async_client(
            trust_env=False,
            event_hooks={"request": [on_request_async], "response": [on_response_async]},
        )
        assert inspect.iscoroutinefunction(client.event_hooks["request"][0])
        async with client:
            await client.get(f"{url}/async")

    def body():
        set_correlation_id("hooked")
        hooks = {"request": [on_request], "response": [on_response]}
        with get_client(trust_env=False, event_hooks=hooks) as client:
            client.get(f"{url}/sync")
        assert hooks == {"request": [on_request], "response": [on_response]}
        asyncio.run(async_body())

    isolated(body)
    assert calls == [
        ("request", "hooked"),
        ("response", "200"),
        ("async request", "hooked"),
        ("async response", "200"),
    ]
    assert seen == [("/sync", "hooked"), ("/async", "hooked")]
