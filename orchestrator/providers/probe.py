"""The provider check of ``GET /health?include_providers=true``: one ``GET {base_url}``
through the provider's own network settings (proxy, CA bundle, timeout at most 2 s), so
a hub behind a corporate proxy does not report its providers unreachable, plus what the
shared circuit breaker and ``ssl_verify: false`` say (both make it degraded)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import ConfigError, first_line
from orchestrator.logs.http import get_async_client
from orchestrator.providers.config import ProviderSection
from orchestrator.providers.network import client_options, effective_network


async def probe_provider(
    name: str, section: ProviderSection, settings: Settings, circuit: dict[str, Any] | None
) -> dict[str, Any]:
    """``{name: provider:<name>, status, message, latency_ms?}`` (the health shape)."""
    network = effective_network(section, settings)
    network = dataclasses.replace(network, timeout=min(network.timeout, 2.0))
    component: dict[str, Any] = {"name": f"provider:{name}"}
    started = time.perf_counter()
    try:
        async with get_async_client(**client_options(name, network)) as client:
            response = await client.get(section.base_url)
    except ConfigError as error:
        return {**component, "status": "degraded", "message": str(error)}
    except Exception as error:  # any transport failure is the answer
        return {**component, "status": "degraded", "message": f"unreachable: {first_line(error)}"}
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    status = "healthy" if response.status_code < 500 else "degraded"
    message = f"GET {section.base_url} answered {response.status_code}"
    state = (circuit or {}).get("state", "closed")
    if state != "closed":
        status, message = "degraded", f"{message}; circuit {state}"
    if not network.verify:
        status, message = "degraded", f"{message}; SSL verification is off"
    return {**component, "status": status, "message": message, "latency_ms": latency_ms}
