"""The hub's HTTP face (``orchestrator serve``): health, Prometheus metrics, the audit API.

Importable pieces for a team's own FastAPI app: :func:`hub_router`, :func:`lifespan`,
the pure-ASGI :class:`CorrelationIdMiddleware`, :class:`HttpMetricsMiddleware`,
:class:`ClientAddressMiddleware`, :class:`BodyLimitMiddleware` and
:class:`RateLimitMiddleware`, the seed's :func:`get_rate_limiter`, and :func:`create_app`
for the standalone app.
"""

from orchestrator.server.app import add_hub_middleware, create_app, hub_router, lifespan
from orchestrator.server.bodylimit import BodyLimitMiddleware
from orchestrator.server.clientaddr import ClientAddressMiddleware, client_address
from orchestrator.server.correlation import CorrelationIdMiddleware
from orchestrator.server.errors import install_error_handlers
from orchestrator.server.http_metrics import HttpMetrics, HttpMetricsMiddleware
from orchestrator.server.ratelimit import (
    RateLimiter,
    RateLimitMiddleware,
    get_rate_limiter,
    s3_rate_limiter,
    webhook_rate_limiter,
)
from orchestrator.server.state import HubState

__all__ = [
    "BodyLimitMiddleware",
    "ClientAddressMiddleware",
    "CorrelationIdMiddleware",
    "HttpMetrics",
    "HttpMetricsMiddleware",
    "HubState",
    "RateLimitMiddleware",
    "RateLimiter",
    "add_hub_middleware",
    "client_address",
    "create_app",
    "get_rate_limiter",
    "hub_router",
    "install_error_handlers",
    "lifespan",
    "s3_rate_limiter",
    "webhook_rate_limiter",
]
