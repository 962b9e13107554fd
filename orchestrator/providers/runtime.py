"""Runtime overrides of provider settings, shared by every instance and daemon.

``PUT /api/cloud/providers/{name}`` stores an override in ``hub_settings`` (scope
``provider:<name>``); every process reads all of them in one call
(``func_provider_settings``) at most every :data:`REFRESH_SECONDS`, merges each over the
provider's YAML section (the same pydantic model checks both), and rebuilds a provider's
HTTP client when its effective network settings changed. So a change made on one
instance is used by the daemon of another within seconds (the seed kept such settings
in one process's memory). An override the model refuses (written by hand in SQL) is
ignored with a warning, never half-applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from orchestrator.config import Settings
from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.errors import ConfigError, HubError
from orchestrator.providers.base import Provider
from orchestrator.providers.calls import provider_settings
from orchestrator.providers.config import ProviderSection
from orchestrator.providers.http import HttpProvider
from orchestrator.providers.network import effective_network

logger = logging.getLogger("orchestrator.providers.runtime")

REFRESH_SECONDS = 2.0
# Keys an override may set; the rest (type, base_url, token_env...) come from the file.
OVERRIDABLE = (
    "ssl_verify",
    "ssl_ca_bundle",
    "proxy_url",
    "http_timeout",
    "webhook_url",
    "webhook_allowed_ips",
    "webhook_require_signature",
    "webhook_secret",
    "circuit_open_after",
    "circuit_half_open_after_seconds",
)


def merged(base: ProviderSection, override: Mapping[str, Any]) -> ProviderSection:
    """``base`` with the override's keys on top (validated by the same model)."""
    data = base.model_dump(exclude_unset=True)
    data.update({k: v for k, v in override.items() if k in OVERRIDABLE})
    if "http_timeout" in override:
        data.pop("timeout_seconds", None)
    return ProviderSection.model_validate(data)


class RuntimeProviderSettings:
    """The effective sections of the configured providers, refreshed from the database."""

    def __init__(self, sections: Mapping[str, ProviderSection], settings: Settings) -> None:
        self.base = dict(sections)
        self.settings = settings
        self.sections: dict[str, ProviderSection] = dict(sections)
        self.versions: dict[str, int] = {}
        self.overrides: dict[str, dict[str, Any]] = {}
        self._fetched = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self, executor: AsyncCallExecutor, *, force: bool = False) -> bool:
        """Reads the overrides unless read less than 2 s ago; True when any changed. A
        database that cannot answer keeps the last known settings."""
        if not self.base:  # no external provider configured: nothing to override
            return False
        async with self._lock:
            if not force and time.monotonic() - self._fetched < REFRESH_SECONDS:
                return False
            try:
                stored: dict[str, Any] = await executor.run(provider_settings())
            except HubError as error:
                logger.warning("Provider settings not refreshed: %s", error)
                return False
            self._fetched = time.monotonic()
            return self._apply(stored)

    def _apply(self, stored: Mapping[str, Any]) -> bool:
        changed = False
        for name, base in self.base.items():
            entry = stored.get(name) or {}
            version = int(entry.get("version") or 0)
            if self.versions.get(name, 0) == version:
                continue
            override = dict(entry.get("settings") or {})
            try:
                section = merged(base, override)
            except ValidationError as error:
                logger.warning(
                    "Ignoring the stored override of provider %s (version %d): %s",
                    name,
                    version,
                    error.errors()[0]["msg"],
                )
                continue
            self.sections[name], self.versions[name] = section, version
            self.overrides[name] = override
            changed = True
        return changed

    def apply_to(self, providers: Mapping[str, Provider]) -> None:
        """Rebuilds the clients whose effective network settings changed."""
        for name, provider in providers.items():
            section = self.sections.get(name)
            if section is None or not isinstance(provider, HttpProvider):
                continue
            try:
                provider.reconfigure(effective_network(section, self.settings))
                provider.webhook_url = section.resolved_webhook_url(name, self.settings.public_url)
            except (ConfigError, ValueError) as error:
                logger.error("Provider %s keeps its previous settings: %s", name, error)

    async def sync(self, executor: AsyncCallExecutor, providers: Mapping[str, Provider]) -> None:
        """Refresh, and rebuild what changed (the daemon calls this before each duty run)."""
        if await self.refresh(executor):
            self.apply_to(providers)
