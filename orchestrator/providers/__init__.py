"""Where jobs run: the :class:`~orchestrator.providers.base.Provider` interface, the
local provider (``orchestrator worker`` processes) and external REST providers."""

from orchestrator.providers.base import (
    Provider,
    ProviderError,
    ProviderJob,
    RemoteStatus,
)
from orchestrator.providers.http import HttpProvider

__all__ = ["HttpProvider", "Provider", "ProviderError", "ProviderJob", "RemoteStatus"]
