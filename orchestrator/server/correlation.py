"""``CorrelationIdMiddleware``: every request runs under one correlation id.

A sane incoming ``X-Correlation-ID`` (1-128 characters of ``A-Z a-z 0-9 . _ : -``) is
used as it is; anything else is replaced by a new UUIDv7, and the response says so in
``X-Correlation-ID-Refused`` (one line; the refused value is never echoed or logged,
since it may be anything a client sent). The id is set in the log context for the
request's task, so every log record of the request carries it into ``system_logs``,
outbound provider calls send it (``orchestrator.logs.http``), audit rows store it, and
the response echoes it. Pure ASGI (never ``BaseHTTPMiddleware``): streaming bodies and
context variables pass through untouched.
"""

from __future__ import annotations

import re
from typing import Any

import uuid_utils

from orchestrator.logs.context import clear_correlation_id, set_correlation_id

HEADER = "x-correlation-id"
REFUSED_HEADER = b"x-correlation-id-refused"
_SANE = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
REFUSED_LINE = (
    b"X-Correlation-ID refused: expected 1-128 characters of A-Z a-z 0-9 . _ : -; "
    b"a new id was assigned"
)

Scope = dict[str, Any]


def incoming_id(scope: Scope) -> tuple[str, bool]:
    """The request's correlation id, and whether a sent one was refused."""
    sent = None
    for name, value in scope.get("headers", ()):
        if name == b"x-correlation-id":
            sent = value
            break
    if sent is not None and _SANE.match(sent):
        return sent.decode("ascii"), False
    return str(uuid_utils.uuid7()), sent is not None


class CorrelationIdMiddleware:
    """Sets, propagates and echoes the correlation id (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id, refused = incoming_id(scope)
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        echo = [(b"x-correlation-id", correlation_id.encode("ascii"))]
        if refused:
            echo.append((REFUSED_HEADER, REFUSED_LINE))

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *echo]
            await send(message)

        set_correlation_id(correlation_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            clear_correlation_id()
