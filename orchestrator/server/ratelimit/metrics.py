"""The ``rate_limits`` metric category: this process's counters and, from the database,
how many clients have a hit inside their window (cached like the other DB metrics)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestrator.errors import HubError
from orchestrator.server.ratelimit.calls import rate_limit_tracked
from orchestrator.server.ratelimit.middleware import SERVICE, RateLimitService

logger = logging.getLogger("orchestrator.server.ratelimit")
_CACHE = "rate_limit_tracked"


async def rate_limit_families(hub: Any) -> list[Any]:
    """The families of the ``rate_limits`` category for one scrape."""
    found = hub.services.get(SERVICE)
    # No limited request yet (or limiting off): zeros, without registering a service
    # (health would then report a limiter that is not there).
    service = found if isinstance(found, RateLimitService) else RateLimitService()
    parts: list[Collector | GaugeMetricFamily] = [
        service.metrics.violations,
        service.metrics.backend_errors,
        service.metrics.fallback_active,
    ]
    cached = hub.services.get(_CACHE)
    ttl = hub.settings.metrics_db_cache_seconds
    if cached is None or time.monotonic() - cached[0] >= ttl:
        try:
            snap = await asyncio.wait_for(hub.db.run(rate_limit_tracked()), 5)
        except (HubError, TimeoutError) as error:
            logger.warning("Rate limit metrics unavailable: %s", error or "timed out")
            return parts
        cached = hub.services[_CACHE] = (time.monotonic(), snap)
    parts.append(
        GaugeMetricFamily(
            "orchestrator_rate_limit_tracked_clients",
            "Rate-limit buckets (rule and client) with a hit inside their window, all instances.",
            float(cached[1]["tracked_clients"]),
        )
    )
    return parts
