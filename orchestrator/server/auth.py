"""The admin API's bearer token: ``Authorization: Bearer $ORCHESTRATOR_API_TOKEN``.

Compared in constant time (``hmac.compare_digest``). No token configured means the admin
API is off: 403 with one line saying how to set it. A missing header is 401 with
``WWW-Authenticate: Bearer``; a wrong token is 401 too, logged as a warning and written to
the audit trail as ``auth_failed`` (one row per client address per minute; every attempt
counted). The token's value never appears in a log line, a response or an audit row.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import HTTPException, Request

from orchestrator.server.auditing import append_event
from orchestrator.server.clientaddr import client_address
from orchestrator.server.http_metrics import route_template
from orchestrator.server.state import HubState

logger = logging.getLogger("orchestrator.server.auth")

TOKEN_NAME = "ORCHESTRATOR_API_TOKEN"  # noqa: S105  (the secret's name, not its value)
AUTH_FAILED_WINDOW = 60


def hub_of(request: Request) -> HubState:
    """The app's :class:`HubState` (set by create_app or the lifespan)."""
    hub = getattr(request.app.state, "hub", None)
    if not isinstance(hub, HubState):
        raise HTTPException(503, "the hub is not started: use orchestrator.server.lifespan")
    return hub


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def require_admin(request: Request) -> str:
    """FastAPI dependency of every admin route; returns the actor name (``admin``)."""
    hub = hub_of(request)
    token = hub.secret_store.get(TOKEN_NAME)
    if token is None:
        problems = "; ".join(hub.secret_store.errors().values())
        raise HTTPException(
            403,
            "the admin API is disabled: set ORCHESTRATOR_API_TOKEN in the environment or "
            "with `orchestrator secrets set ORCHESTRATOR_API_TOKEN`"
            + (f" ({problems})" if problems else ""),
        )
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise _unauthorized(
            "missing bearer token: send Authorization: Bearer <ORCHESTRATOR_API_TOKEN>"
        )
    if hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8")):
        return "admin"
    ip = client_address(request)
    logger.warning(
        "Admin authentication failed from %s for %s %s", ip, request.method, request.url.path
    )
    await append_event(
        request,
        "auth_failed",
        "authenticate",
        target_type="route",
        target_id=request.url.path[:1024],
        details={
            "method": request.method,
            "route": route_template(request.scope),
            "reason": "wrong bearer token",
            "user_agent": request.headers.get("user-agent", "")[:256],
        },
        throttle_key=ip or "unknown",
        throttle_seconds=AUTH_FAILED_WINDOW,
    )
    raise _unauthorized("wrong bearer token: send Authorization: Bearer <ORCHESTRATOR_API_TOKEN>")
