"""A cloud GPU provider stand-in: a real HTTP server on 127.0.0.1 speaking HttpProvider's API.

``POST /jobs`` creates a job (status ``queued``; the same ``Idempotency-Key`` returns the
same job), ``GET /jobs/<id>`` answers its current status, ``POST /jobs/<id>/cancel``
cancels it. Tests move jobs along with ``set_status``, queue canned failures (429, 503)
with ``fail_next``, and read what clients sent in ``requests``. Standard library only
(``http.server`` on a free port, a thread), so the daemon's polling path is exercised
over real sockets and real HTTP, as it would be against a cloud API.

With ``ssl_context`` it serves HTTPS. With ``webhook_secret``, a submitted job whose body
carries a ``webhook_url`` is reported back to it, once the submit has been answered:
each status of ``webhook_statuses`` in turn, as a Standard Webhooks signed POST (the
answers' status codes land in ``webhook_answers``).
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple


class Seen(NamedTuple):
    """One request: method, path, headers (lower-case names), JSON body or None."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeProvider:
    """Context manager running the stand-in; ``url`` is its base URL."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        webhook_secret: str | None = None,
        webhook_statuses: tuple[str, ...] = ("running", "succeeded"),
    ) -> None:
        self.ssl_context = ssl_context
        self.webhook_secret = webhook_secret
        self.webhook_statuses = webhook_statuses
        self.webhook_answers: list[int] = []
        self._callbacks: list[tuple[str, dict[str, Any]]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.requests: list[Seen] = []
        self._failures: deque[tuple[int, dict[str, str]]] = deque()
        # Called with the request body before a new job is answered (tests race it).
        self.on_submit: Callable[[Any], None] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    def _call_back(self, url: str, job: dict[str, Any]) -> None:
        """Posts each of ``webhook_statuses`` for ``job`` to ``url``, signed."""
        import httpx
        from standardwebhooks.webhooks import Webhook

        assert self.webhook_secret is not None
        signer = Webhook(self.webhook_secret.split()[-1])
        for status in self.webhook_statuses:
            body = json.dumps(
                {"id": job["id"], "job_id": job["submitted"].get("job_id"), "status": status}
            ).encode()
            msg_id = f"msg_{uuid.uuid4().hex}"
            now = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign(msg_id, now, body),
            }
            try:
                answer = httpx.post(url, content=body, headers=headers, timeout=30)
                code = answer.status_code
            except httpx.HTTPError:
                code = 0
            with self._lock:
                self.webhook_answers.append(code)
                job["status"] = status

    def start_callbacks(self) -> None:
        """Starts the webhook calls queued by submits (after their answers went out)."""
        with self._lock:
            pending, self._callbacks = self._callbacks, []
        for url, job in pending:
            threading.Thread(target=self._call_back, args=(url, job), daemon=True).start()

    def set_status(self, provider_job_id: str, status: str, **details: Any) -> None:
        """What the next GET of this job answers."""
        with self._lock:
            self.jobs[provider_job_id].update(status=status, **details)

    def fail_next(self, status: int, times: int = 1, **headers: str) -> None:
        """The next ``times`` requests get ``status`` (e.g. 503, or 429 with Retry-After)."""
        with self._lock:
            self._failures.extend([(status, headers)] * times)

    def gets(self) -> list[Seen]:
        """The GET /jobs/<id> requests seen so far."""
        return [r for r in self.requests if r.method == "GET"]

    def _handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple:
        with self._lock:
            self.requests.append(Seen(method, path, headers, body))
            if self._failures:
                status, extra = self._failures.popleft()
                return status, {"error": "injected failure"}, extra
            parts = [p for p in path.split("/") if p]
            if method == "POST" and parts == ["jobs"]:
                key = headers.get("idempotency-key") or f"anon-{len(self.jobs)}"
                if key not in self.by_key:
                    if self.on_submit is not None:
                        self.on_submit(body)
                    job_id = f"remote-{len(self.jobs) + 1:05d}"
                    self.by_key[key] = job_id
                    self.jobs[job_id] = {"id": job_id, "status": "queued", "submitted": body}
                    if self.webhook_secret and isinstance(body, dict) and body.get("webhook_url"):
                        self._callbacks.append((body["webhook_url"], self.jobs[job_id]))
                job = self.jobs[self.by_key[key]]
                return 201, {"id": job["id"], "status": job["status"]}, {}
            if len(parts) >= 2 and parts[0] == "jobs" and parts[1] in self.jobs:
                job = self.jobs[parts[1]]
                if method == "GET" and len(parts) == 2:
                    return 200, {k: v for k, v in job.items() if k != "submitted"}, {}
                if method == "POST" and parts[2:] == ["cancel"]:
                    job["status"] = "canceled"
                    return 200, {"id": job["id"], "status": job["status"]}, {}
            return 404, {"error": f"no such job or route: {method} {path}"}, {}

    def __enter__(self) -> FakeProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a cloud API behind a CDN
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per reply

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer, extra = provider._handle(method, self.path, headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                provider.start_callbacks()

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests read `requests`

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True
            )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
