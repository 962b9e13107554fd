"""The daemon's own operations as :class:`~orchestrator.db.calls.Call` values: duty
leases (``sql/functions/daemon/leases.sql``), so two daemons never run the same duty at once."""

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
