"""The hub's HTTP face (``orchestrator serve``): health, Prometheus metrics, the audit API.

Importable pieces for a team's own FastAPI app: :func:`hub_router`, :func:`lifespan`,
the pure-ASGI :class:`CorrelationIdMiddleware` and :class:`HttpMetricsMiddleware`, and
:func:`create_app` for the standalone app.
"""

from orchestrator.server.app import add_hub_middleware, create_app, hub_router, lifespan
from orchestrator.server.correlation import CorrelationIdMiddleware
from orchestrator.server.errors import install_error_handlers
from orchestrator.server.http_metrics import HttpMetrics, HttpMetricsMiddleware
from orchestrator.server.state import HubState

__all__ = [
    "CorrelationIdMiddleware",
    "HttpMetrics",
    "HttpMetricsMiddleware",
    "HubState",
    "add_hub_middleware",
    "create_app",
    "hub_router",
    "install_error_handlers",
    "lifespan",
]
