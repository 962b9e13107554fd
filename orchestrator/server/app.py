"""The hub's HTTP app: ``create_app`` for ``orchestrator serve``, and the pieces a team
mounts in its own FastAPI app (OPS §4.5)::

    from orchestrator.server import CorrelationIdMiddleware, hub_router, lifespan
    app = FastAPI(lifespan=lifespan)      # pool + the daemon's duties in this loop
    app.include_router(hub_router())      # health, metrics, audit, admin config
    app.add_middleware(CorrelationIdMiddleware)

Middleware order, outermost first: client address (trusted proxies), correlation id (so
every log record and the 500 handler know it), HTTP metrics, body cap, rate limit, then
the router. Later areas (rate limits, webhooks,
storage, the jobs API) add a router to :func:`hub_router` and a middleware to
:func:`add_hub_middleware`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI

from orchestrator import __version__
from orchestrator.config import Settings, get_settings
from orchestrator.daemon.config import EnterpriseConfig, get_enterprise_config
from orchestrator.db.target import resolve_database
from orchestrator.server import (
    audit_api,
    backup_api,
    events_stream,
    health,
    jobs_api,
    providers_api,
    webhooks,
)
from orchestrator.server.bodylimit import HUB_LIMITS, BodyLimitMiddleware
from orchestrator.server.clientaddr import ClientAddressMiddleware
from orchestrator.server.correlation import CorrelationIdMiddleware
from orchestrator.server.errors import install_error_handlers
from orchestrator.server.http_metrics import HttpMetricsMiddleware
from orchestrator.server.metrics import routes as metrics_routes
from orchestrator.server.ratelimit import RateLimitMiddleware
from orchestrator.server.state import HubState
from orchestrator.server.storage import routes as storage_routes

logger = logging.getLogger("orchestrator.server")


def hub_router() -> APIRouter:
    """Every route of the hub: health, metrics and their config, the audit API, jobs, the
    event stream, webhooks, providers, backups and the S3 upload endpoint."""
    router = APIRouter()
    router.include_router(health.router)
    router.include_router(metrics_routes.router)
    router.include_router(audit_api.router)
    router.include_router(webhooks.router)
    router.include_router(providers_api.router)
    router.include_router(backup_api.router)
    router.include_router(jobs_api.router)
    router.include_router(events_stream.router)
    router.include_router(storage_routes.router)
    return router


def add_hub_middleware(app: FastAPI, hub: HubState) -> None:
    """The hub's middlewares, outermost first as OPS §4.3 orders them: client address,
    correlation id, HTTP metrics, body cap, rate limit (added innermost first)."""
    settings = hub.settings
    if settings.rate_limit_calls > 0:
        limits = hub.config.file.http.rate_limit
        # built here, not by add_middleware's lazy factory: a bad rule of the config file
        # is one line when serve starts, not an error on the first request
        RateLimitMiddleware(None, rules=limits.rules, exempt_cidrs=limits.exempt_cidrs)
        app.add_middleware(
            RateLimitMiddleware,
            calls=settings.rate_limit_calls,
            period=settings.rate_limit_period,
            rules=limits.rules,
            exempt_cidrs=limits.exempt_cidrs,
            ipv6_prefix=limits.ipv6_prefix,
            hub=hub,
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, limits=HUB_LIMITS)
    app.add_middleware(HttpMetricsMiddleware, metrics=hub.http_metrics)
    app.add_middleware(CorrelationIdMiddleware)
    app.add_middleware(ClientAddressMiddleware, trusted_proxies=settings.trusted_proxies)
    networks = settings.trusted_proxy_networks
    if networks:
        logger.info(
            "X-Forwarded-For and X-Real-IP are believed from %s only",
            ", ".join(str(n) for n in networks),
        )


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Starts the hub (pool, daemon duties) with the app and stops it with the app.

    With :func:`create_app` the state is ready; mounted in another app, it is built here
    from the settings (``DATABASE_URL`` else the embedded server, migrated like every
    command), released on the way out.
    """
    target = None
    hub = getattr(app.state, "hub", None)
    if not isinstance(hub, HubState):
        settings = get_settings()
        from orchestrator.cli.schema import prepare_schema

        target = await asyncio.to_thread(resolve_database, settings, sql=True)
        await asyncio.to_thread(prepare_schema, target)
        hub = HubState(settings, target.url, target.label, get_enterprise_config())
        app.state.hub = hub
    try:
        await hub.start()
        logger.info("Hub started (%s)", "API and daemon" if hub.run_daemon else "API only")
        yield
    finally:
        logger.info("Hub stopping")
        await hub.stop()
        if target is not None:
            await asyncio.to_thread(target.close)


def create_app(
    settings: Settings,
    dsn: str,
    *,
    label: str = "the database",
    config: EnterpriseConfig | None = None,
    run_daemon: bool = True,
) -> FastAPI:
    """The standalone app of ``orchestrator serve`` on database ``dsn``."""
    app = FastAPI(
        title="orchestrator-hub",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    hub = HubState(settings, dsn, label, config or get_enterprise_config(), run_daemon=run_daemon)
    app.state.hub = hub
    install_error_handlers(app)
    app.include_router(hub_router())
    add_hub_middleware(app, hub)
    return app
