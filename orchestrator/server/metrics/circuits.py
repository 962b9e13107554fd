"""The ``circuit_breakers`` category: each provider's breaker from ``provider_health``
(``func_provider_health``, one round trip, cached like the other database metrics), so
every instance exports the same state whichever daemon changed it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from orchestrator.errors import HubError
from orchestrator.providers.calls import provider_health
from orchestrator.server.state import HubState

logger = logging.getLogger("orchestrator.server.metrics")

STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


async def _snapshot(hub: HubState) -> dict[str, Any] | None:
    cached = hub.services.get("circuit_snapshot")
    ttl = hub.settings.metrics_db_cache_seconds
    if isinstance(cached, tuple) and time.monotonic() - cached[0] < ttl:
        snap: dict[str, Any] = cached[1]
        return snap
    try:
        snap = await asyncio.wait_for(hub.db.run(provider_health()), 5)
    except (HubError, TimeoutError) as error:
        logger.warning("Circuit breaker metrics unavailable: %s", error or "timed out")
        return None
    hub.services["circuit_snapshot"] = (time.monotonic(), snap)
    return snap


async def circuit_families(hub: HubState) -> list[Metric]:
    """The gauge of states and the counter of calls per provider (none when unreadable)."""
    snap = await _snapshot(hub)
    if snap is None:
        return []
    state = GaugeMetricFamily(
        "orchestrator_provider_circuit_state",
        "Each provider's circuit breaker: 0 closed, 1 half-open, 2 open.",
        labels=["provider"],
    )
    calls = CounterMetricFamily(
        "orchestrator_provider_requests",
        "Calls to each provider recorded by the circuit breaker, by outcome.",
        labels=["provider", "outcome"],
    )
    for name, row in sorted(snap.items()):
        state.add_metric([name], STATE_VALUES.get(str(row.get("state")), 0))
        calls.add_metric([name, "ok"], float(row.get("ok_total") or 0))
        calls.add_metric([name, "failed"], float(row.get("failed_total") or 0))
    return [state, calls]
