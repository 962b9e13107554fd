"""``BodyLimitMiddleware``: request bodies over a route's cap are answered 413.

The cap is ``ORCHESTRATOR_MAX_BODY_BYTES`` (1 MiB) unless a path prefix has its own
(matched segment-wise, the longest prefix wins): the hub gives webhooks 10 MiB (provider
payloads with logs exceed 1 MiB) and exempts ``/api/cloud/storage``, whose S3 handlers
cap and stream uploads themselves. A ``Content-Length`` over the cap is refused before a
byte of the body is read; without one (chunked) or with one that lies, the bytes are
counted as they arrive and the request stops at the first chunk past the cap, so no
handler ever holds more than the cap in memory. Pure ASGI (never ``BaseHTTPMiddleware``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

MIB = 1024 * 1024
# Routes that bound their bodies themselves: webhooks (10 MiB here, read in chunks by the
# route too), the jobs API (exempt: jsonbody.read_object caps at 2 MiB with its own line,
# so a 1-2 MiB job gets the submit function's 422 naming the 1 MiB rule) and the S3
# endpoint (exempt: it streams to disk and caps objects and uploads itself).
HUB_LIMITS: dict[str, int | None] = {
    "/api/webhooks": 10 * MIB,
    "/api/cloud/jobs": None,
    "/api/cloud/storage": None,
}


class BodyTooLarge(Exception):
    """Raised from ``receive`` at the first chunk past the cap."""


def _too_large(cap: int, path: str) -> bytes:
    detail = (
        f"request body too large: {path[:200]} accepts at most {cap} bytes; "
        "send a smaller body (ORCHESTRATOR_MAX_BODY_BYTES sets the default cap)"
    )
    return json.dumps({"detail": detail}).encode()


class BodyLimitMiddleware:
    """Caps request bodies per path prefix (see the module docstring).

    ``max_bytes``: the default cap; ``limits``: prefix -> cap, ``None`` for no cap.
    """

    def __init__(
        self, app: Any, max_bytes: int = MIB, limits: Mapping[str, int | None] | None = None
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes={max_bytes}: expected a positive number of bytes")
        self.app = app
        self.max_bytes = max_bytes
        prefixes = dict(limits or {})
        for prefix in prefixes:
            if not prefix.startswith("/") or (prefix != "/" and prefix.endswith("/")):
                raise ValueError(f"body limit prefix {prefix!r}: expected /a/path without a /")
        self.limits = sorted(prefixes.items(), key=lambda item: len(item[0]), reverse=True)

    def cap_for(self, path: str) -> int | None:
        """The cap of ``path`` (None: not capped here)."""
        for prefix, cap in self.limits:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return cap
        return self.max_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        cap = self.cap_for(path)
        if cap is None:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.strip().isdigit() and int(value) > cap:
                await _answer_413(send, cap, path)
                return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a cut-off body (often a 400) is replaced
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _answer_413(send, cap, path)


async def _answer_413(send: Any, cap: int, path: str) -> None:
    body = _too_large(cap, path)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
