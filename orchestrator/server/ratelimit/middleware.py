"""``RateLimitMiddleware``: the seed's middleware, with its state in PostgreSQL (OPS §9).

Mount it as the seed documented::

    app.add_middleware(RateLimitMiddleware, calls=100, period=60,
                       rules=[(r"^/api/cloud/expensive$", 5, 300, ["POST"])], enable_audit=True)

Every response of a limited route carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset`` (Unix seconds when the oldest counted hit leaves the window,
i.e. when ``Remaining`` next grows). Over the limit: 429, ``Retry-After``, and the seed's
body ``{"detail": "Rate limit exceeded. Please try again later."}``; storage paths answer
the S3 way (503 ``SlowDown``), which S3 clients retry by themselves. A refusal is audited
as ``rate_limited`` (one row per rule and client per window, in the decision's own
transaction) and counted in ``orchestrator_rate_limit_violations_total{rule}``.

The client is the resolved address (:mod:`orchestrator.server.clientaddr`): no localhost
bypass, no "authenticated" multiplier for the mere presence of a header. Pure ASGI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from typing import Any

from orchestrator.netaddr import is_trusted, parse_address, parse_trusted_proxies
from orchestrator.server.clientaddr import client_of, peer_of
from orchestrator.server.ratelimit.limiter import RateDecision, RateLimitMetrics, SqlLimiter
from orchestrator.server.ratelimit.rules import (
    EXCLUDED,
    Rule,
    build_rules,
    client_key,
    first_match,
    is_excluded,
)

logger = logging.getLogger("orchestrator.server.ratelimit")

BODY_429 = b'{"detail":"Rate limit exceeded. Please try again later."}'
SERVICE = "rate_limit"


def _s3_slow_down(path: str) -> bytes:
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
        "<Message>Please reduce your request rate.</Message>"
        f"<Resource>{escape(path[:1024])}</Resource></Error>"
    ).encode()


class RateLimitService:
    """What one app's limiter shares between requests: the limiter and its metrics."""

    def __init__(self) -> None:
        self.metrics = RateLimitMetrics()
        self.limiter = SqlLimiter(self.metrics)


def rate_limit_service(hub: Any) -> RateLimitService:
    """The app's service (kept in ``hub.services`` so the metrics scrape finds it)."""
    services: dict[str, Any] = hub.services
    found = services.get(SERVICE)
    if not isinstance(found, RateLimitService):
        found = services[SERVICE] = RateLimitService()
    return found


def rate_limit_health(hub: Any) -> dict[str, Any] | None:
    """The ``rate_limiter`` health component: degraded while decisions are per process
    (the database did not answer); None when this app has no limiter."""
    found = hub.services.get(SERVICE)
    if not isinstance(found, RateLimitService):
        return None
    why = found.limiter.falling_back
    if why is not None:
        return {
            "name": "rate_limiter",
            "status": "degraded",
            "message": f"limits are per instance (the database did not answer: {why})",
        }
    return {"name": "rate_limiter", "status": "healthy", "message": "limits shared in PostgreSQL"}


def _header(scope: MutableMapping[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class RateLimitMiddleware:
    """Limits requests per rule and client (see the module docstring).

    ``calls``/``period``: the default rule (``calls=0`` switches the middleware off);
    ``rules``: a team's rules, tried before the built-in ones; ``exempt_cidrs``: resolved
    client networks never limited; ``hub``: the :class:`HubState` (default: the app's).
    """

    def __init__(
        self,
        app: Any,
        calls: int = 100,
        period: float = 60,
        rules: Iterable[Any] | None = None,
        enable_audit: bool = True,
        *,
        exempt_cidrs: str | Iterable[str] = (),
        excluded: Iterable[tuple[str, frozenset[str] | None]] = EXCLUDED,
        ipv6_prefix: int = 64,
        hub: Any = None,
    ) -> None:
        self.app = app
        self.off = int(calls) == 0
        self.rules: list[Rule] = [] if self.off else build_rules(int(calls), float(period), rules)
        self.enable_audit = enable_audit
        self.exempt = parse_trusted_proxies(exempt_cidrs, "exempt_cidrs")
        self.excluded = tuple(excluded)
        if not 1 <= ipv6_prefix <= 128:
            raise ValueError(f"ipv6_prefix={ipv6_prefix}: expected 1 to 128")
        self.ipv6_prefix = ipv6_prefix
        self.hub = hub
        self._own = RateLimitService()  # without a hub (not started): local windows only

    def _hub(self, scope: MutableMapping[str, Any]) -> Any:
        if self.hub is not None:
            return self.hub
        state = getattr(scope.get("app"), "state", None)
        return getattr(state, "hub", None)

    def _exempt(self, client: str | None) -> bool:
        address = parse_address(client) if client else None
        return address is not None and is_trusted(address, self.exempt)

    def _audit(
        self, scope: MutableMapping[str, Any], rule: Rule, client: str | None, hub: Any
    ) -> dict[str, Any]:
        state = scope.get("state") or {}
        return {
            "actor_ip": client,
            "target_id": str(scope.get("path", ""))[:1024],
            "details": {
                "method": scope.get("method", ""),
                "rule": rule.id,
                "pattern": rule.pattern,
                "user_agent": _header(scope, b"user-agent")[:256],
                "peer": peer_of(scope),
            },
            "correlation_id": state.get("correlation_id"),
            "instance_id": getattr(hub, "instance", None),
        }

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.off:
            await self.app(scope, receive, send)
            return
        path, method = str(scope.get("path", "")), str(scope.get("method", "GET"))
        if is_excluded(path, method, self.excluded):
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        if self.exempt and self._exempt(client):
            await self.app(scope, receive, send)
            return
        rule = first_match(self.rules, path, method)
        if not rule.counts(scope.get("query_string", b"")):
            await self.app(scope, receive, send)
            return
        hub = self._hub(scope)
        service = rate_limit_service(hub) if hub is not None else self._own
        db = getattr(hub, "executor", None)
        audit = self._audit(scope, rule, client, hub) if self.enable_audit else None
        bucket = f"{rule.id}|{client_key(client, self.ipv6_prefix)}"
        decision = await service.limiter.hit(db, bucket, rule.calls, rule.period, audit)
        headers = _headers(decision)
        if not decision.allowed:
            service.metrics.violations.labels(rule.id).inc()
            await _refuse(send, rule, path, decision, headers, _sends_a_body(scope))
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _headers(decision: RateDecision) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset).encode()),
    ]


def _sends_a_body(scope: MutableMapping[str, Any]) -> bool:
    """Whether the request carries a body (a length above 0, or chunked)."""
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


async def _refuse(
    send: Any,
    rule: Rule,
    path: str,
    decision: RateDecision,
    headers: list[tuple[bytes, bytes]],
    unread_body: bool,
) -> None:
    """The refusal, without reading the request. When the request has a body, the
    connection is closed after the answer: uvicorn does not drain an unread body, and
    the next request on a kept-alive connection would start in the middle of it (a
    client then sees a bare 400 instead of this refusal)."""
    if unread_body:
        headers = [*headers, (b"connection", b"close")]
    if rule.s3:
        status, body, kind = 503, _s3_slow_down(path), b"application/xml"
    else:
        status, body, kind = 429, BODY_429, b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(max(1, decision.retry_after)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
