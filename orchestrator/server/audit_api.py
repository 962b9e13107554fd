"""``GET /api/audit`` (filters, keyset pages, newest first), ``GET /api/audit/verify``
and ``GET /api/audit/types`` (admin), the seed's query shape:
``GET /api/audit?event_type=auth_failed&limit=100``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from orchestrator.audit.calls import EVENT_TYPES, audit_query, audit_verify
from orchestrator.errors import QueryInputError
from orchestrator.query.timespec import parse_time
from orchestrator.server.auth import hub_of, require_admin

router = APIRouter(prefix="/api/audit", tags=["audit"], dependencies=[Depends(require_admin)])


def _time(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return parse_time(value, what=name).isoformat()
    except (QueryInputError, OverflowError, ValueError) as error:
        raise HTTPException(422, f"invalid query parameter {name}: {error}") from None


@router.get("")
async def list_entries(
    request: Request,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
    actor_ip: Annotated[str | None, Query(max_length=64)] = None,
    target_type: Annotated[str | None, Query(max_length=64)] = None,
    target_id: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """A page of entries, newest first: ``{entries, more, next_after}``."""
    call = audit_query(
        event_type=event_type,
        since=_time(since, "since"),
        until=_time(until, "until"),
        actor_ip=actor_ip,
        target_type=target_type,
        target_id=target_id,
        after_id=after,
        limit=limit,
    )
    page: dict[str, Any] = await hub_of(request).db.run(call)
    return page


@router.get("/verify")
async def verify(
    request: Request,
    from_id: Annotated[int | None, Query(ge=1)] = None,
    to_id: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """Recomputes the chain: ``{valid, checked, first_id, last_id, broken_at, reason}``."""
    result: dict[str, Any] = await hub_of(request).db.run(audit_verify(from_id, to_id))
    return result


@router.get("/types")
async def types() -> list[str]:
    """The event types the hub writes."""
    return list(EVENT_TYPES)
