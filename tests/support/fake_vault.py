"""A local stand-in for HashiCorp Vault's KV endpoints (no Vault server is installable
here: not on pip, not in apt), spoken to by the real ``hvac`` client.

It answers what the hub uses, as Vault does: KV v2 ``GET /v1/<mount>/data/<path>``
(``{"data": {"data": {...}, "metadata": {...}}}``) and KV v1 ``GET /v1/<mount>/<path>``
(``{"data": {...}}``), ``X-Vault-Token`` checked (403 ``permission denied``), 404 with
``{"errors": []}`` for a missing secret, and ``sealed`` answering 503 like a sealed
Vault. Every request is recorded (method, path, token) so a test can see what the client
sent. :meth:`FakeVault.stop` makes the address refuse connections (an outage).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeVault:
    """One stand-in server on 127.0.0.1; use as a context manager."""

    def __init__(self, token: str, *, kv_version: int = 2, mount: str = "secret") -> None:
        self.token = token
        self.kv_version = kv_version
        self.mount = mount
        self.secrets: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.sealed = False
        self.requests: list[tuple[str, str, str | None]] = []
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                vault._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the test output stays the test's

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def put(self, path: str, data: dict[str, Any]) -> None:
        """Writes a secret (a new version under KV v2)."""
        self.secrets[path.strip("/")] = dict(data)
        self.versions[path.strip("/")] = self.versions.get(path.strip("/"), 0) + 1

    def start(self) -> FakeVault:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops answering and closes the socket: connections are refused from now on."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeVault:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self.stop()

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        token = request.headers.get("X-Vault-Token")
        self.requests.append(("GET", path, token))
        if self.sealed:
            return self._send(request, 503, {"errors": ["Vault is sealed"]})
        if token != self.token:
            return self._send(request, 403, {"errors": ["permission denied"]})
        prefix = f"/v1/{self.mount}/" + ("data/" if self.kv_version == 2 else "")
        if not path.startswith(prefix):
            return self._send(request, 404, {"errors": []})
        name = path[len(prefix) :].strip("/")
        if name not in self.secrets:
            return self._send(request, 404, {"errors": []})
        data = self.secrets[name]
        if self.kv_version == 1:
            return self._send(request, 200, {"data": data, "lease_duration": 2764800})
        metadata = {
            "created_time": "2026-12-06T10:00:00Z",
            "deletion_time": "",
            "destroyed": False,
            "version": self.versions[name],
        }
        return self._send(request, 200, {"data": {"data": data, "metadata": metadata}})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        request.end_headers()
        request.wfile.write(raw)
