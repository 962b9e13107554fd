"""Who the client is: one resolved address for the audit log, allowlists and rate limits.

``X-Forwarded-For`` and ``X-Real-IP`` are believed only when the socket peer is one of
``ORCHESTRATOR_TRUSTED_PROXIES`` (IPs and CIDRs, validated at start). The seed believed
the first ``X-Forwarded-For`` entry from anyone, so a client chose its own address (and
``X-Forwarded-For: 127.0.0.1`` switched its rate limit off). Here (OPS §8):

* peer not trusted: the client is the peer, every forwarded header ignored;
* peer trusted: ``X-Forwarded-For`` (all header lines joined) is read right to left,
  skipping trusted hops; the first untrusted entry is the client; all trusted: the
  leftmost; a malformed entry stops the walk (the client is the last trusted hop, since
  nothing left of garbage can be believed); no ``X-Forwarded-For``: a valid
  ``X-Real-IP``, else the peer;
* IPv4-mapped IPv6 (``::ffff:10.1.2.3``) is IPv4 before any comparison;
* no address is exempt by what a header says (no localhost bypass).

:class:`ClientAddressMiddleware` resolves once per request, keeps the socket peer in
``scope["state"]["peer"]`` and the result in ``scope["state"]["client_address"]``, and
rewrites ``scope["client"]`` like uvicorn's proxy middleware does. :func:`client_address`
reads that; without the middleware (a team's app) it is the peer.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from starlette.requests import HTTPConnection

from orchestrator.netaddr import (
    IPAddress,
    IPNetwork,
    is_trusted,
    parse_address,
    parse_trusted_proxies,
)


def _header_values(scope: MutableMapping[str, Any], name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == name]


def resolve(scope: MutableMapping[str, Any], trusted: Sequence[IPNetwork]) -> str | None:
    """The client address of a request scope under ``trusted`` (see the module docstring)."""
    client = scope.get("client")
    peer = parse_address(str(client[0])) if client else None
    if peer is None or not trusted or not is_trusted(peer, trusted):
        return str(peer) if peer is not None else None
    forwarded = _header_values(scope, b"x-forwarded-for")
    if forwarded:
        current: IPAddress = peer
        for entry in reversed(",".join(forwarded).split(",")):
            address = parse_address(entry)
            if address is None:
                break
            current = address
            if not is_trusted(address, trusted):
                break
        return str(current)
    for value in _header_values(scope, b"x-real-ip"):
        real = parse_address(value)
        if real is not None:
            return str(real)
    return str(peer)


def peer_of(scope: MutableMapping[str, Any]) -> str | None:
    """The socket peer of a request scope (IPv4-mapped as IPv4), or None (a unix socket,
    or a test client's made-up name such as ``testclient``)."""
    state = scope.get("state") or {}
    if "peer" in state:
        return state["peer"]  # type: ignore[no-any-return]
    client = scope.get("client")
    address = parse_address(str(client[0])) if client else None
    return str(address) if address is not None else None


def client_of(scope: MutableMapping[str, Any]) -> str | None:
    """The resolved client address of a request scope (the peer without the middleware)."""
    state = scope.get("state") or {}
    if "client_address" in state:
        return state["client_address"]  # type: ignore[no-any-return]
    return peer_of(scope)


def client_address(request: HTTPConnection) -> str | None:
    """The request's client address: believed through trusted proxies only, IPv4-mapped
    IPv6 as IPv4, None for a unix socket. Audit log, allowlists and limiter all use it."""
    return client_of(request.scope)


def peer_address(request: HTTPConnection) -> str | None:
    """The request's socket peer (the proxy, when there is one)."""
    return peer_of(request.scope)


class ClientAddressMiddleware:
    """Resolves the client address once per request (pure ASGI; outermost middleware)."""

    def __init__(self, app: Any, trusted_proxies: str | Iterable[str] = ()) -> None:
        self.app = app
        self.trusted = parse_trusted_proxies(trusted_proxies)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            state = scope.setdefault("state", {})
            peer = peer_of(scope)
            resolved = resolve(scope, self.trusted)
            state["peer"] = peer
            state["client_address"] = resolved
            client = scope.get("client")
            if resolved is not None and client and resolved != client[0]:
                scope["client"] = (resolved, 0)
        await self.app(scope, receive, send)
