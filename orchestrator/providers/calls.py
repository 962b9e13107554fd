"""The providers' SQL operations as :class:`~orchestrator.db.calls.Call` values: webhook
deliveries (``sql/functions/providers/webhooks.sql``), the circuit breaker and the runtime
overrides (``sql/functions/providers/circuit.sql``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.db.calls import Call
from orchestrator.db.jsonsafe import json_safe


def record_webhook(
    provider: str,
    delivery_id: str,
    *,
    provider_job_id: str | None,
    job_id: str | None,
    status: str,
    details: Mapping[str, Any],
    payload_sha256: str | None = None,
) -> Call[dict[str, Any]]:
    """Apply one delivery once: ``{outcome: applied|unchanged|duplicate|ignored, ...}``."""
    return Call(
        "func_record_webhook",
        {
            "provider": provider,
            "delivery_id": delivery_id,
            "provider_job_id": provider_job_id,
            "job_id": job_id,
            "status": status,
            "details": json_safe(dict(details)),
            "payload_sha256": payload_sha256,
        },
        dict,
    )


def prune_webhook_deliveries(retention_days: int = 7) -> Call[dict[str, Any]]:
    """Forget deliveries older than ``retention_days``: ``{deleted}``."""
    return Call("func_prune_webhook_deliveries", {"retention_days": retention_days}, dict)


def circuit_allow(provider: str, half_open_after_seconds: int = 30) -> Call[dict[str, Any]]:
    """May a call go out now: ``{allow, state, probe, retry_in_seconds?}``."""
    return Call(
        "func_provider_circuit_allow",
        {"provider": provider, "half_open_after_seconds": half_open_after_seconds},
        dict,
    )


def record_provider_call(
    provider: str, ok: bool, error: str | None = None, open_after: int = 5
) -> Call[dict[str, Any]]:
    """Record a call's outcome: ``{state, consecutive_failures, opened_at}``."""
    return Call(
        "func_record_provider_call",
        {"provider": provider, "ok": ok, "error": error, "open_after": open_after},
        dict,
    )


def provider_health() -> Call[dict[str, Any]]:
    """Every provider's breaker: ``{name: {state, consecutive_failures, ...}}``."""
    return Call("func_provider_health", {}, dict)


def provider_settings() -> Call[dict[str, Any]]:
    """Every provider's runtime overrides: ``{name: {settings, version, ...}}``."""
    return Call("func_provider_settings", {}, dict)
