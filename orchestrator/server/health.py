"""Health for load balancers and Kubernetes: live, ready, and the full component report.

* ``/health/live``: no I/O at all; 200 while the event loop answers (a database outage
  must not get every pod restarted).
* ``/health/ready``: 503 with reasons when the database does not answer, its schema is
  behind or edited, this instance's daemon task died, or the process is stopping.
* ``/health`` (and the seed's ``/api/cloud/health``, ``?include_providers=true``): every
  component, the worst one decides: **503 when unhealthy** (the seed answered 200 with
  "unhealthy" in the body, so a load balancer kept sending traffic), 200 when healthy or
  degraded.

The database probe and the full evaluation are cached for one second and shared by
concurrent callers, so a probe storm is at most one database check per second per
instance. Each duty's state comes from ``daemon_duty_status``, written by whichever
daemon ran it, so an API-only instance sees a duty go stale when its holder dies.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orchestrator.daemon.calls import duty_status
from orchestrator.db.probe import DatabaseProbe, probe_database
from orchestrator.errors import HubError
from orchestrator.logs.handler import SinkLogHandler
from orchestrator.server.auth import TOKEN_NAME, hub_of
from orchestrator.server.state import HubState

logger = logging.getLogger("orchestrator.server.health")

Status = Literal["healthy", "degraded", "unhealthy"]
RANK: dict[str, int] = {"unhealthy": 0, "degraded": 1, "healthy": 2}
CACHE_SECONDS = 1.0
DEGRADED_LATENCY = 0.5
T = TypeVar("T")


class SharedResult(Generic[T]):
    """A value computed at most once per ``ttl`` seconds; concurrent callers share it."""

    def __init__(self, compute: Callable[[], Awaitable[T]], ttl: float = CACHE_SECONDS) -> None:
        self.compute = compute
        self.ttl = ttl
        self._value: tuple[float, T] | None = None
        self._running: asyncio.Future[T] | None = None

    async def get(self) -> T:
        """The cached value, or a fresh one (one computation for all waiting callers)."""
        now = time.monotonic()
        if self._value is not None and now - self._value[0] < self.ttl:
            return self._value[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._running)

    async def _refresh(self) -> T:
        try:
            value = await self.compute()
            self._value = (time.monotonic(), value)
            return value
        finally:
            self._running = None

    @property
    def last(self) -> T | None:
        """The last computed value, however old (for metrics)."""
        return self._value[1] if self._value is not None else None


def component(name: str, status: Status, message: str, **extra: Any) -> dict[str, Any]:
    """One entry of ``components`` (the seed's shape)."""
    return {"name": name, "status": status, **extra, "message": message}


def stale_bound(interval: float, override: float | None) -> float:
    """Seconds without a success after which a duty is stale: the operator's setting, else
    ``max(3 x interval, interval + lease TTL)`` (a dead holder's lease must expire before
    another daemon can take over)."""
    if override is not None:
        return override
    return max(3 * interval, interval + math.ceil(interval) + 30)


def judge_duty(row: dict[str, Any], interval: float, override: float | None) -> dict[str, Any]:
    """The health component of one duty from its ``func_duty_status`` row."""
    name = f"duty:{row['duty']}"
    holder = row.get("last_holder") or "?"
    failures = int(row.get("consecutive_failures") or 0)
    since = row.get("seconds_since_success")
    bound = stale_bound(interval, override)
    error = (row.get("last_error") or "")[:300]
    if failures >= 3:
        return component(
            name, "unhealthy", f"failed {failures} times in a row on {holder}: {error}"
        )
    if since is None:
        return component(
            name, "degraded", f"has not succeeded yet; last error on {holder}: {error}"
        )
    if since > bound:
        return component(
            name,
            "unhealthy",
            f"stale: last succeeded {since:.1f} s ago on {holder} (expected every {interval:g} s, "
            f"stale after {bound:g} s)",
        )
    if failures:
        return component(
            name, "degraded", f"failed {failures} time(s) in a row on {holder}: {error}"
        )
    return component(
        name, "healthy", f"last succeeded {since:.1f} s ago on {holder} (every {interval:g} s)"
    )


class HealthService:
    """Computes and caches the probes of one hub app."""

    def __init__(self, hub: HubState) -> None:
        self.hub = hub
        self.database = SharedResult(self._probe)
        self.report = SharedResult(self._evaluate)
        self._dropped_seen = 0

    async def _probe(self) -> DatabaseProbe:
        return await asyncio.to_thread(probe_database, self.hub.dsn, self.hub.files, timeout=2.0)

    async def ready(self) -> list[str]:
        """Why this instance is not ready (empty when it is)."""
        reasons: list[str] = []
        if self.hub.shutting_down:
            reasons.append("shutting down")
        probe = await self.database.get()
        if not probe.ok:
            reasons.append(f"database unreachable: {probe.error}")
        elif not probe.schema_current:
            reasons.append(f"database schema not current: {probe.schema}")
        problem = self.hub.daemon_problem()
        if problem:
            reasons.append(problem)
        return reasons

    async def full(self, include_providers: bool) -> dict[str, Any]:
        """The full report; providers are probed on request only (not cached)."""
        report = await self.report.get()
        if include_providers:
            providers = await self._providers()
            report = {**report, "components": [*report["components"], *providers]}
            report["status"] = worst(c["status"] for c in report["components"])
        return report

    async def _evaluate(self) -> dict[str, Any]:
        probe = await self.database.get()
        components = [self._database(probe), *await self._duties(probe)]
        daemon = self._daemon()
        if daemon is not None:
            components.append(daemon)
        components.extend([self._secrets(), self._log_handler()])
        from orchestrator.server.ratelimit.middleware import rate_limit_health

        limiter = rate_limit_health(self.hub)
        if limiter is not None:
            components.append(limiter)
        return {
            "status": worst(c["status"] for c in components),
            "version": self.hub.version,
            "uptime_seconds": round(self.hub.uptime, 1),
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "instance": self.hub.instance,
            "components": components,
        }

    def _database(self, probe: DatabaseProbe) -> dict[str, Any]:
        if not probe.ok:
            return component(
                "database", "unhealthy", f"{self.hub.label} unreachable: {probe.error}"
            )
        latency_ms = round((probe.latency_seconds or 0) * 1000, 2)
        message = f"PostgreSQL {probe.server_version} accessible; {probe.schema}"
        if not probe.schema_current:
            return component("database", "unhealthy", message, latency_ms=latency_ms)
        status: Status = (
            "degraded" if (probe.latency_seconds or 0) > DEGRADED_LATENCY else "healthy"
        )
        return component("database", status, message, latency_ms=latency_ms)

    async def _duties(self, probe: DatabaseProbe) -> list[dict[str, Any]]:
        local = {d.name: d.interval for d in self._local_duties()}
        if not probe.ok:
            return []
        try:
            rows = (await self.hub.db.run(duty_status()))["duties"]
        except HubError as error:
            return [component("duties", "unhealthy", f"cannot read duty status: {error}")]
        override = self.hub.settings.duty_stale_after
        found: list[dict[str, Any]] = []
        for row in rows:
            interval = float(row.get("interval_seconds") or local.get(row["duty"], 60))
            found.append(judge_duty(row, interval, override))
        known = {row["duty"] for row in rows}
        for name in sorted(set(local) - known):
            found.append(component(f"duty:{name}", "degraded", "has not run anywhere yet"))
        return found

    def _local_duties(self) -> list[Any]:
        manager = self.hub.manager
        if manager is None or manager.loop is None:
            return []
        return list(manager.loop.duties)

    def _daemon(self) -> dict[str, Any] | None:
        if not self.hub.run_daemon:
            return None
        problem = self.hub.daemon_problem()
        if problem:
            return component("daemon", "unhealthy", problem)
        return component("daemon", "healthy", "duties running in this process")

    def _secrets(self) -> dict[str, Any]:
        store = self.hub.secret_store
        errors = store.errors()
        found = store.resolve(TOKEN_NAME)
        errors = store.errors() or errors
        if errors:
            return component("secrets", "unhealthy", "; ".join(errors.values()))
        stale = store.degraded()
        if stale:
            return component("secrets", "degraded", "; ".join(stale.values()))
        if found is None:
            return component(
                "secrets", "degraded", f"{TOKEN_NAME} not set: the admin API answers 403"
            )
        return component("secrets", "healthy", f"{TOKEN_NAME} configured ({found.provider})")

    def _log_handler(self) -> dict[str, Any]:
        handler = next(
            (h for h in logging.getLogger().handlers if isinstance(h, SinkLogHandler)), None
        )
        if handler is None:
            return component("log_handler", "healthy", "database logging off (ENABLE_DB_LOGGING)")
        stats = handler.stats()
        dropped = sum(stats.get("dropped", {}).values())
        grew, self._dropped_seen = dropped > self._dropped_seen, dropped
        state = stats.get("state")
        if state == "down":
            return component("log_handler", "unhealthy", f"down: {stats.get('last_error')}")
        if state != "up" or grew:
            return component("log_handler", "degraded", f"{state}; {dropped} dropped")
        return component("log_handler", "healthy", f"up; {dropped} dropped")

    async def _providers(self) -> list[dict[str, Any]]:
        from orchestrator.providers.calls import provider_health
        from orchestrator.providers.probe import probe_provider
        from orchestrator.server.webhooks import webhook_service

        runtime = webhook_service(self.hub).runtime  # YAML + runtime overrides
        if not runtime.base:
            return []
        try:
            await runtime.refresh(self.hub.db)
            circuits: dict[str, Any] = await self.hub.db.run(provider_health())
        except HubError:
            circuits = {}
        return [
            await probe_provider(name, section, self.hub.settings, circuits.get(name))
            for name, section in sorted(runtime.sections.items())
        ]


def worst(statuses: Any) -> Status:
    """The worst of the statuses (healthy when there are none)."""
    ranked = sorted(statuses, key=lambda s: RANK[s])
    return ranked[0] if ranked else "healthy"


def health_service(hub: HubState) -> HealthService:
    """The app's health service, created on first use."""
    service = hub.services.get("health")
    if not isinstance(service, HealthService):
        service = hub.services["health"] = HealthService(hub)
    return service


router = APIRouter(tags=["health"])
LIVE = {"status": "ok"}


@router.get("/health/live")
@router.get("/api/cloud/health/live")
async def live() -> dict[str, str]:
    """Liveness: answers while the event loop does; never touches the database."""
    return LIVE


@router.get("/health/ready")
@router.get("/api/cloud/health/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 ``{"status": "ready"}`` or 503 with the reasons."""
    reasons = await health_service(hub_of(request)).ready()
    if reasons:
        body = {"status": "not_ready", "reasons": reasons, "detail": "; ".join(reasons)}
        return JSONResponse(body, 503)
    return JSONResponse({"status": "ready"})


@router.get("/health")
@router.get("/api/cloud/health")
async def full_health(request: Request, include_providers: bool = False) -> JSONResponse:
    """Every component; 503 when the worst is unhealthy, else 200."""
    report = await health_service(hub_of(request)).full(include_providers)
    if report["status"] == "unhealthy":
        bad = [
            f"{c['name']}: {c['message']}"
            for c in report["components"]
            if c["status"] == "unhealthy"
        ]
        return JSONResponse({**report, "detail": "unhealthy: " + "; ".join(bad)}, 503)
    return JSONResponse(report)
