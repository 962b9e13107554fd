"""The client address of a request: the socket peer.

Forwarded headers (``X-Forwarded-For``, ``X-Real-IP``) are not believed yet; trusted
proxies come with rate limiting (OPS §8), which replaces this one function, so the audit
log, the allowlist and the limiter always agree on who the client is.
"""

from __future__ import annotations

from starlette.requests import Request


def client_address(request: Request) -> str | None:
    """The peer's IP address (IPv4-mapped IPv6 as IPv4), or None (a unix socket)."""
    if request.client is None:
        return None
    host = request.client.host
    return host.removeprefix("::ffff:") if host.startswith("::ffff:") else host
