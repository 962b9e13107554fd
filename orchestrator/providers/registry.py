"""The providers the daemon knows: the local one, plus each ``providers:`` entry of the config."""

from __future__ import annotations

import re
from collections.abc import Mapping

from orchestrator.config import Settings
from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.errors import ConfigError
from orchestrator.providers.base import Provider
from orchestrator.providers.config import ProviderSection
from orchestrator.providers.http import HttpProvider
from orchestrator.providers.local import NAME as LOCAL
from orchestrator.providers.local import LocalProvider

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def build_providers(
    executor: AsyncCallExecutor,
    sections: Mapping[str, ProviderSection],
    settings: Settings | None = None,
) -> dict[str, Provider]:
    """``{name: provider}`` with ``local`` first; a bad name is one ConfigError line."""
    providers: dict[str, Provider] = {LOCAL: LocalProvider(executor)}
    for name, section in sections.items():
        if name == LOCAL:
            raise ConfigError(
                "invalid config: providers.local: the local provider is built in and takes "
                "no settings; name external providers anything else"
            )
        if not _NAME.match(name):
            raise ConfigError(
                f"invalid config: providers.{name}: expected a provider name of lower-case "
                "letters, digits, '.', '_' or '-' (at most 63 characters)"
            )
        providers[name] = HttpProvider.from_config(name, section, settings)
    return providers


def polled_providers(providers: Mapping[str, Provider], explicit: bool | None) -> list[Provider]:
    """The external providers whose job status the daemon polls: all of them when polling
    is switched on explicitly, none when off, else (auto) those without a webhook URL."""
    external = [p for p in providers.values() if p.dispatched_by_daemon]
    if explicit is not None:
        return external if explicit else []
    return [p for p in external if p.webhook_url is None]
