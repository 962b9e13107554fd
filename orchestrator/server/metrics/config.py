"""The metrics export's config, stored in ``hub_settings`` scope ``metrics`` so every
instance agrees (the seed kept it per process): ``prometheus_enabled`` (default true) and
``prometheus_categories`` (default: the ``standard`` template), with a version for
optimistic concurrency. Scrapes read it through a 2-second cache, keeping the last known
config while the database is away."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import HubError
from orchestrator.ops.calls import get_settings, put_settings
from orchestrator.server.metrics.categories import DEFAULT_TEMPLATE, TEMPLATES, template_of
from orchestrator.server.state import HubState

SCOPE = "metrics"
CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class MetricsConfig:
    """The effective config."""

    enabled: bool
    categories: tuple[str, ...]
    version: int

    def as_json(self) -> dict[str, Any]:
        """The seed's body shape plus ``template`` and ``version``."""
        return {
            "prometheus_enabled": self.enabled,
            "prometheus_categories": list(self.categories),
            "template": template_of(list(self.categories)),
            "version": self.version,
        }


DEFAULT = MetricsConfig(True, TEMPLATES[DEFAULT_TEMPLATE], 0)


def from_stored(stored: dict[str, Any]) -> MetricsConfig:
    """The config of a ``func_get_settings`` answer (defaults where unset)."""
    entry = stored.get(SCOPE)
    if not entry:
        return DEFAULT
    settings = entry.get("settings") or {}
    categories = settings.get("prometheus_categories")
    return MetricsConfig(
        bool(settings.get("prometheus_enabled", True)),
        tuple(categories) if isinstance(categories, list) else DEFAULT.categories,
        int(entry.get("version") or 0),
    )


class MetricsConfigStore:
    """Reads (cached for scrapes, fresh for the API) and writes the stored config."""

    def __init__(self, hub: HubState) -> None:
        self.hub = hub
        self._cached: tuple[float, MetricsConfig] | None = None

    async def fresh(self) -> MetricsConfig:
        """The stored config now (raises when the database cannot answer)."""
        config = from_stored(await self.hub.db.run(get_settings([SCOPE])))
        self._cached = (time.monotonic(), config)
        return config

    async def current(self) -> MetricsConfig:
        """For scrapes: at most 2 s old; the last known (or the default) when the
        database is away, so a scrape still answers."""
        if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        try:
            return await self.fresh()
        except HubError:
            return self._cached[1] if self._cached is not None else DEFAULT

    async def put(
        self, patch: dict[str, Any], expected_version: int | None, **audit: Any
    ) -> dict[str, Any]:
        """Stores ``patch`` (validated by the caller); the function's answer."""
        answer: dict[str, Any] = await self.hub.db.run(
            put_settings(SCOPE, patch, expected_version=expected_version, **audit)
        )
        self._cached = None
        return answer


def config_store(hub: HubState) -> MetricsConfigStore:
    """The app's store, created on first use."""
    store = hub.services.get("metrics_config")
    if not isinstance(store, MetricsConfigStore):
        store = hub.services["metrics_config"] = MetricsConfigStore(hub)
    return store
