"""``GET /api/events/stream`` (admin): job events as Server-Sent Events.

Fed from ``job_events`` by keyset (``func_job_events_after``): each open stream reads
the events after its position every ``ORCHESTRATOR_EVENTS_POLL_INTERVAL`` seconds, on
the app's pool, one short call at a time. No LISTEN and no session state, so it works
through a transaction pooler, and any instance serves any client: a client that
reconnects (the browser's ``EventSource`` does, with ``Last-Event-ID``) gets every event
after the last one it saw exactly once, in the same order, whichever instance answers
and whatever happened meanwhile. Approval expiry, status changes, cancellations: every
``job_events`` row is an event (``approval_expired`` included).

Each event is one SSE message: ``id`` = the ``job_events`` id, no ``event`` field (so
``EventSource.onmessage`` gets them all), ``data`` = one JSON object (``event_id``,
``job_id``, ``event_type``, ``from_status``, ``to_status``, ``worker_id``, ``details``,
``created_at``, ``user_id``, ``organization_id``, ``job_type``, ``provider``). A comment
line every ``ORCHESTRATOR_EVENTS_HEARTBEAT`` seconds keeps idle connections (and the
proxies in between) open; it carries the position as an ``id`` when filters skipped
events, so a reconnect does not scan them again.

Plain Starlette ``StreamingResponse``: the SSE framing is a few lines, Starlette already
cancels the generator when the client goes away (ASGI spec < 2.4, uvicorn's), and the
end of a stream at shutdown is the hub's own flag (``HubState.draining``), which
``sse-starlette`` would have handled by patching uvicorn. No new dependency.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from orchestrator.errors import DatabaseUnavailable, InputRefused
from orchestrator.jobs.calls import job_events_after
from orchestrator.server.auth import hub_of, require_admin
from orchestrator.server.state import HubState

logger = logging.getLogger("orchestrator.server.events")

STREAM_PATH = "/api/events/stream"
RATE_LIMIT_EXEMPT_PREFIXES: tuple[str, ...] = (STREAM_PATH,)
"""Paths the rate limiter must not count: one long-lived request per client, and its
reconnects (seed: ``/api/events/stream`` is excluded from rate limits)."""

PAGE = 200  # events per read while catching up
RETRY_MS = 3000  # the reconnect delay suggested to EventSource clients
_TICK = 0.25  # how often a waiting stream looks at the shutdown flag

router = APIRouter(prefix="/api/events", tags=["events"], dependencies=[Depends(require_admin)])


def _start(last_event_id: str | None, after: int | None) -> int | None:
    """Where to start: after ``Last-Event-ID`` (a reconnect), else ``after``, else now."""
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not text.isdigit() or len(text) > 19:
        raise HTTPException(
            422, f"invalid Last-Event-ID {text[:40]!r}: expected an event id (a whole number)"
        )
    return int(text)


def frame(event: dict[str, Any]) -> bytes:
    """One SSE message: the event's id and its JSON on one ``data`` line."""
    # ASCII only: a U+2028 in a detail would end the line for clients that split lines
    # the way str.splitlines does (the SSE spec splits on CR and LF only)
    data = json.dumps(event, separators=(",", ":"), default=str)
    return f"id: {event['event_id']}\ndata: {data}\n\n".encode()


@router.get("/stream")
async def stream(
    request: Request,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    job_id: Annotated[list[UUID] | None, Query(max_length=100)] = None,
    user: Annotated[list[str] | None, Query(max_length=100)] = None,
    event_type: Annotated[list[str] | None, Query(max_length=100)] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """Job events as they happen. ``?after=ID`` (or the ``Last-Event-ID`` header, which
    wins) starts after that event (0: from the first); without either, from now.
    Filters, each repeatable: ``job_id``, ``user``, ``event_type``."""
    hub = hub_of(request)
    filters: dict[str, Any] = {
        "job_ids": None if job_id is None else [str(j) for j in job_id],
        "user_ids": user,
        "event_types": event_type,
    }
    start = _start(last_event_id, after)
    try:  # the first read checks the filters: a refusal is still a plain 422
        first = await hub.db.run(job_events_after(start, row_limit=PAGE, **filters))
    except InputRefused as error:
        raise HTTPException(422, str(error)) from None
    return StreamingResponse(
        _events(hub, first, filters, fresh=start is None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    hub: HubState, page: dict[str, Any], filters: dict[str, Any], *, fresh: bool
) -> AsyncIterator[bytes]:
    """The stream; ``fresh``: started at the present, whose position is sent at once as
    an ``id`` so even a client that saw no event yet resumes without a gap."""
    settings = hub.settings
    position: int = int(page["position"])
    sent: int | None = position if fresh and position > 0 else None
    resume = f"id: {sent}\n" if sent is not None else ""
    logger.info("Event stream opened at position %s", position)
    count = 0
    paused = False
    yield f"retry: {RETRY_MS}\n{resume}: connected\n\n".encode()
    last_write = time.monotonic()
    try:
        while True:
            for event in page["events"]:
                yield frame(event)
                count += 1
                sent = int(event["event_id"])
                last_write = time.monotonic()
            position = int(page["position"])
            if not page["more"]:
                beat = await _wait(hub, settings.events_poll_interval, last_write,
                                   settings.events_heartbeat)  # fmt: skip
                if beat is None:
                    return  # the server is stopping: the client reconnects elsewhere
                if beat:
                    skipped = position != sent and position > 0
                    yield (
                        f": heartbeat\nid: {position}\n\n" if skipped else ": heartbeat\n\n"
                    ).encode()
                    sent = position if skipped else sent
                    last_write = time.monotonic()
            try:
                page = await hub.db.run(job_events_after(position, row_limit=PAGE, **filters))
            except DatabaseUnavailable as error:  # one line per outage, not per poll
                if not paused:
                    logger.warning("Event stream paused at position %s: %s", position, error)
                paused = True
                page = {"events": [], "position": position, "more": False}
                continue
            if paused:
                logger.info("Event stream resumed at position %s", position)
                paused = False
    finally:
        # also when the client went away: Starlette cancels this generator then
        logger.info("Event stream closed at position %s after %d event(s)", position, count)


async def _wait(hub: HubState, interval: float, last_write: float, heartbeat: float) -> bool | None:
    """Sleeps one poll interval; True when a heartbeat is due, None when stopping."""
    deadline = time.monotonic() + interval
    while True:
        if hub.draining or hub.shutting_down:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            return time.monotonic() - last_write >= heartbeat
        await asyncio.sleep(min(_TICK, left))
