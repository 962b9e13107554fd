"""The circuit breaker of each external provider, its state in PostgreSQL (OPS §12.4).

The daemon asks :meth:`CircuitBreaker.admit` before dispatching to (or polling) a
provider and tells :meth:`CircuitBreaker.record` how the calls went. While the circuit is
open nothing is claimed for that provider, so its jobs stay queued and no attempt is
spent on a provider that is down; after the cool-down one daemon, anywhere, gets a
half-open probe. A provider that answers at all (even 4xx) counts as up: only transport
errors, timeouts, 429 and 5xx count as failures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.errors import HubError
from orchestrator.providers.calls import circuit_allow, record_provider_call
from orchestrator.providers.config import ProviderSection

logger = logging.getLogger("orchestrator.providers.circuit")


@dataclass(frozen=True)
class Admission:
    """May calls go out: ``allow``; ``probe`` when this is the half-open trial."""

    allow: bool
    probe: bool = False
    state: str = "closed"


class CircuitBreaker:
    """Reads and writes the shared breaker rows; settings per provider from ``sections``."""

    def __init__(
        self,
        executor: AsyncCallExecutor,
        sections: Callable[[], Mapping[str, ProviderSection]],
    ) -> None:
        self.executor = executor
        self.sections = sections

    def _section(self, provider: str) -> ProviderSection | None:
        return self.sections().get(provider)

    async def admit(self, provider: str) -> Admission:
        """Whether to call ``provider`` now; a database error lets calls through (the
        claim that follows would fail the same way anyway)."""
        section = self._section(provider)
        cool_down = section.circuit_half_open_after_seconds if section else 30
        try:
            answer = await self.executor.run(circuit_allow(provider, cool_down))
        except HubError as error:
            logger.debug("Circuit of %s unknown: %s", provider, error)
            return Admission(True)
        admission = Admission(bool(answer["allow"]), bool(answer["probe"]), str(answer["state"]))
        if admission.probe:
            logger.info("Provider %s: circuit half-open, probing with one call", provider)
        return admission

    async def record(self, provider: str, ok: bool, error: str | None = None) -> str | None:
        """Records one outcome; the circuit's state after it (None when not recorded)."""
        section = self._section(provider)
        open_after = section.circuit_open_after if section else 5
        try:
            answer = await self.executor.run(record_provider_call(provider, ok, error, open_after))
        except HubError as failure:
            logger.warning("Circuit of %s not updated: %s", provider, failure)
            return None
        state = str(answer["state"])
        if not ok and state == "open" and int(answer["consecutive_failures"]) >= open_after:
            logger.warning(
                "Provider %s: circuit open after %d consecutive failures (%s)",
                provider,
                answer["consecutive_failures"],
                error,
            )
        return state
