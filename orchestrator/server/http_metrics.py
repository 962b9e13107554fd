"""``HttpMetricsMiddleware``: requests counted and timed by method, route template, status.

Labels stay bounded: the route is the matched route's template (``/api/audit``, not the
path a client typed), ``<unmatched>`` for anything no route matched, and methods outside
the usual ones count as ``OTHER``. The seed glued method and raw path into one label
(unbounded cardinality), counted errors apart, averaged latency in milliseconds, and
never called its recorder outside tests; here the middleware feeds a counter and a
histogram in seconds on every request. Per process: sum across instances in PromQL.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from prometheus_client import Counter, Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """The per-app HTTP counter and histogram (not in prometheus_client's global
    registry, so two apps in one process never share or collide)."""

    def __init__(self) -> None:
        self.requests = Counter(
            "orchestrator_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=None,
        )
        self.duration = Histogram(
            "orchestrator_http_request_duration_seconds",
            "Time from request start to the end of the response, by method and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=None,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Counts one request."""
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The template of the route that handled the request, or ``<unmatched>``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return scope.get("root_path", "") + path if scope.get("root_path") else path


class HttpMetricsMiddleware:
    """Feeds :class:`HttpMetrics`; a request that raises counts as status 500."""

    def __init__(self, app: Any, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope.get("method", "GET")
            self.metrics.observe(
                method if method in METHODS else "OTHER",
                route_template(scope),
                status,
                time.perf_counter() - started,
            )
