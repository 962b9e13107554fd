"""The daemon's own operations as :class:`~orchestrator.db.calls.Call` values: duty
leases (``sql/functions/daemon/leases.sql``), so two daemons never run the same duty at once,
and what each duty did last (``sql/functions/daemon/duty_status.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.db.calls import Call


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The answer of ``func_try_duty_lease``."""

    acquired: bool
    duty: str
    holder: str | None
    expires_at: str | None


def _lease_state(raw: Any) -> LeaseState:
    return LeaseState(bool(raw["acquired"]), raw["duty"], raw.get("holder"), raw.get("expires_at"))


def try_duty_lease(duty: str, holder: str, ttl_seconds: int) -> Call[LeaseState]:
    """Take or renew ``duty``'s lease for ``holder``."""
    return Call(
        "func_try_duty_lease",
        {"duty": duty, "holder": holder, "ttl_seconds": ttl_seconds},
        _lease_state,
    )


def release_duty_lease(duty: str, holder: str) -> Call[bool]:
    """Give ``duty``'s lease back if ``holder`` holds it."""
    return Call(
        "func_release_duty_lease",
        {"duty": duty, "holder": holder},
        lambda raw: bool(raw["released"]),
    )


def record_duty_run(
    duty: str,
    holder: str,
    *,
    ok: bool,
    error: str | None = None,
    duration_ms: float | None = None,
    interval_seconds: float | None = None,
) -> Call[dict[str, Any]]:
    """Record one run of ``duty`` (cluster-wide status for health and metrics)."""
    return Call(
        "func_record_duty_run",
        {
            "duty": duty,
            "holder": holder,
            "ok": ok,
            "error": error,
            "duration_ms": duration_ms,
            "interval_seconds": interval_seconds,
        },
        dict,
    )


def duty_status() -> Call[dict[str, Any]]:
    """Every duty's last run as the database sees it now: ``{now, duties: [...]}``."""
    return Call("func_duty_status", {}, dict)
