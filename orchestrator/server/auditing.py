"""Appending the hub's own audit events from a request: its client address, correlation
id and this instance go with every row, so ``GET /api/audit`` and the logs tie together."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from orchestrator.audit.calls import audit_append
from orchestrator.errors import HubError
from orchestrator.server.clientaddr import client_address, peer_address

logger = logging.getLogger("orchestrator.server.audit")


async def append_event(
    request: Request,
    event_type: str,
    action: str,
    *,
    actor: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
    throttle_key: str | None = None,
    throttle_seconds: int | None = None,
) -> dict[str, Any] | None:
    """Appends one event; a database that cannot take it costs a warning, not the request
    (the event is security evidence, the answer to the client must still go out)."""
    hub = request.app.state.hub
    call = audit_append(
        event_type,
        action,
        actor=actor,
        actor_ip=client_address(request),
        target_type=target_type,
        target_id=target_id,
        details={**(details or {}), "peer": peer_address(request)},
        correlation_id=getattr(request.state, "correlation_id", None),
        instance_id=hub.instance,
        throttle_key=throttle_key,
        throttle_seconds=throttle_seconds,
    )
    try:
        result: dict[str, Any] = await hub.db.run(call)
    except HubError as error:
        logger.warning("Could not append the %s audit event: %s", event_type, error)
        return None
    return result


def request_context(request: Request) -> dict[str, Any]:
    """The audit fields of a request that SQL functions writing audit rows take."""
    return {
        "actor_ip": client_address(request),
        "correlation_id": getattr(request.state, "correlation_id", None),
        "instance_id": request.app.state.hub.instance,
    }
