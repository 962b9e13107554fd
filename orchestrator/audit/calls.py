"""The audit trail's operations as :class:`~orchestrator.db.calls.Call` values.

Each returns the function's ``jsonb`` answer as plain Python: the HTTP API and the CLI
hand it on as it is, so the SQL function is the one definition of its shape.
"""

from __future__ import annotations

from typing import Any

from orchestrator.db.calls import Call

# Event types the hub writes (README "Audit log"); the SQL accepts any snake_case name.
EVENT_TYPES = (
    "auth_failed",
    "config_changed",
    "rate_limited",
    "webhook_rejected",
    "upload_rejected",
    "backup_created",
    "backup_restored",
    "job_submitted",
    "job_cancelled",
    "job_approved",
    "job_rejected",
)


def audit_append(
    event_type: str,
    action: str,
    *,
    actor: str | None = None,
    actor_ip: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    instance_id: str | None = None,
    throttle_key: str | None = None,
    throttle_seconds: int | None = None,
) -> Call[dict[str, Any]]:
    """Append one event; with ``throttle_key`` at most one row per key per window."""
    return Call(
        "func_audit_append",
        {
            "event_type": event_type,
            "action": action,
            "actor": actor,
            "actor_ip": actor_ip,
            "target_type": target_type,
            "target_id": target_id,
            "details": details or {},
            "correlation_id": correlation_id,
            "instance_id": instance_id,
            "throttle_key": throttle_key,
            "throttle_seconds": throttle_seconds,
        },
        dict,
    )


def audit_query(
    *,
    event_type: str | None = None,
    since: str | None = None,
    until: str | None = None,
    actor_ip: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> Call[dict[str, Any]]:
    """A keyset page, newest first: ``{entries, more, next_after}``."""
    return Call(
        "func_audit_query",
        {
            "event_type": event_type,
            "since": since,
            "until": until,
            "actor_ip": actor_ip,
            "target_type": target_type,
            "target_id": target_id,
            "after_id": after_id,
            "row_limit": limit,
        },
        dict,
    )


def audit_verify(from_id: int | None = None, to_id: int | None = None) -> Call[dict[str, Any]]:
    """Recompute the chain: ``{valid, checked, first_id, last_id, broken_at, reason}``."""
    return Call("func_audit_verify", {"from_id": from_id, "to_id": to_id}, dict)


def audit_prune(retention_days: int) -> Call[dict[str, Any]]:
    """Delete entries older than ``retention_days`` (the newest is always kept)."""
    return Call("func_audit_prune", {"retention_days": retention_days}, dict)
