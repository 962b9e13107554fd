"""Shared settings (``sql/functions/ops/settings.sql``) and the one call behind every
database-derived Prometheus metric (``sql/functions/ops/metrics.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.db.calls import Call


def get_settings(scopes: Sequence[str]) -> Call[dict[str, Any]]:
    """``{scope: {settings, version, updated_at, updated_by}}`` of the scopes ever written."""
    return Call("func_get_settings", {"scopes": list(scopes)}, dict)


def put_settings(
    scope: str,
    patch: dict[str, Any],
    *,
    expected_version: int | None = None,
    updated_by: str | None = None,
    secret_keys: Sequence[str] = (),
    actor_ip: str | None = None,
    correlation_id: str | None = None,
    instance_id: str | None = None,
) -> Call[dict[str, Any]]:
    """Merge ``patch`` into ``scope``; ``{conflict, changed, scope, version, settings}``."""
    return Call(
        "func_put_settings",
        {
            "scope": scope,
            "patch": patch,
            "expected_version": expected_version,
            "updated_by": updated_by,
            "secret_keys": list(secret_keys),
            "actor_ip": actor_ip,
            "correlation_id": correlation_id,
            "instance_id": instance_id,
        },
        dict,
    )


def ops_metrics(categories: Sequence[str] | None = None) -> Call[dict[str, Any]]:
    """Every DB-derived metric value of ``categories`` (None = all) in one round trip."""
    return Call(
        "func_ops_metrics",
        {"categories": list(categories) if categories is not None else None},
        dict,
    )


def fold_job_counters() -> Call[dict[str, Any]]:
    """Count the job events written since the last fold into ``job_status_totals``
    (``{keys, events, more}``; call again while ``more``)."""
    return Call("func_fold_job_counters", {}, dict)
