"""Jobs over HTTP (admin): submit, list, show, cancel, approve, reject.

Each route runs the very :class:`~orchestrator.db.calls.Call` the CLI's ``orchestrator
jobs`` command runs (``orchestrator.jobs.calls``), so limits, approval rules and the
one-line refusals are the SQL functions' own. Refusals map to statuses by SQLSTATE:
class 22 (bad input) is 422; ``P0001`` is 422 for a submit (an unknown user is a
malformed job) and 409 for a decision on a job (already decided, expired, self-approval);
an unknown job id is 404. Every accepted change appends an audit event
(``job_submitted``, ``job_cancelled``, ``job_approved``, ``job_rejected``) with the
client address and correlation id.

A job is answered as ``func_get_job`` reads it: the job's columns, ``queue``, ``events``,
``approval`` (the approval request or null) and ``upload_progress`` (whatever the read
function reports for the job's uploads; null until it reports any).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from orchestrator.db.calls import Call
from orchestrator.errors import InputRefused
from orchestrator.jobs import calls as job_calls
from orchestrator.server.auditing import append_event
from orchestrator.server.auth import hub_of, require_admin
from orchestrator.server.jsonbody import read_object

router = APIRouter(prefix="/api/cloud/jobs", tags=["jobs"], dependencies=[Depends(require_admin)])

T = TypeVar("T")
STATUSES = ("awaiting_approval", "queued", "running", "completed", "failed", "cancelled")
DECISION_KEYS = ("by", "reason")


def as_returned(call: Call[Any]) -> Call[Any]:
    """The same call, its ``jsonb`` answer kept as the database built it (new keys of
    the read functions reach the client without a change here)."""
    return dataclasses.replace(call, decode=lambda raw: raw)


async def run(
    request: Request, call: Call[T], *, conflict: int = 409, job_id: str | None = None
) -> T:
    """Runs ``call``; a refusal becomes one line: 404 for an unknown ``job_id``, 422 for
    bad input (SQLSTATE class 22), ``conflict`` for the function's other refusals."""
    try:
        return await hub_of(request).db.run(call)
    except InputRefused as error:
        line = str(error)
        if job_id is not None and line.startswith("unknown job"):
            raise HTTPException(404, f"unknown job {job_id}") from None
        state = error.sqlstate or "22"
        raise HTTPException(422 if state.startswith("22") else conflict, line) from None


def job_view(raw: dict[str, Any]) -> dict[str, Any]:
    """The job read as the API answers it (``approval_request`` named ``approval``)."""
    view = dict(raw)
    view["approval"] = view.pop("approval_request", None)
    # Reported by func_get_job for jobs with uploads (the storage endpoint); kept as read.
    view.setdefault("upload_progress", None)
    return view


async def read_job(request: Request, job_id: str) -> dict[str, Any]:
    raw: dict[str, Any] = await run(request, as_returned(job_calls.get_job(job_id)), job_id=job_id)
    return job_view(raw)


async def _decision_body(request: Request) -> tuple[str, str | None]:
    """``{"by": who (default: admin), "reason": text}``, both optional."""
    body = await read_object(request, empty_ok=True)
    unknown = sorted(set(body) - set(DECISION_KEYS))
    if unknown:
        raise HTTPException(
            422,
            f"unknown body field(s): {', '.join(unknown)}; accepted: {', '.join(DECISION_KEYS)}",
        )
    for key in DECISION_KEYS:
        if body.get(key) is not None and not isinstance(body[key], str):
            raise HTTPException(422, f"body field {key} must be a string or null")
    by = body.get("by")
    return ("admin" if by is None else by), body.get("reason")  # "" is the SQL's to refuse


@router.post("", status_code=201)
async def submit(request: Request) -> JSONResponse:
    """Submits the body (a ``func_submit_job`` object, as ``orchestrator jobs submit``
    sends): 201 with the job, 200 when its idempotency key already made it."""
    job = await read_object(request)
    result = await run(request, job_calls.submit_job_object(job), conflict=422)
    if not result.duplicate:
        await append_event(
            request,
            "job_submitted",
            "submit",
            actor="admin",
            target_type="job",
            target_id=result.job_id,
            details={
                "user_id": job.get("user_id"),
                "job_type": job.get("job_type"),
                "provider": job.get("provider", "local"),
                "status": result.status,
                "approval_request_id": result.approval_request_id,
            },
        )
    view = await read_job(request, result.job_id)
    view["duplicate"] = result.duplicate
    return JSONResponse(jsonable_encoder(view), 200 if result.duplicate else 201)


@router.get("")
async def list_jobs(
    request: Request,
    status: Annotated[str | None, Query(max_length=64)] = None,
    user: Annotated[str | None, Query(max_length=255)] = None,
    organization: Annotated[str | None, Query(max_length=255)] = None,
    organisation: Annotated[str | None, Query(max_length=255)] = None,
    job_type: Annotated[str | None, Query(alias="type", max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    after: UUID | None = None,
) -> dict[str, Any]:
    """A page of jobs, newest first: ``{jobs, more, next_after}`` (pass ``next_after`` as
    ``after`` with the same filters for the next page)."""
    if organization and organisation and organization != organisation:
        raise HTTPException(422, "give organization or organisation, not two different values")
    call = job_calls.list_jobs(
        status,
        user,
        None if after is None else str(after),
        limit,
        organization_id=organization or organisation,
        job_type=job_type,
    )
    page: dict[str, Any] = await run(request, as_returned(call), conflict=422)
    return {"jobs": page["rows"], "more": page["more"], "next_after": page["next"]}


@router.get("/{job_id}")
async def show(request: Request, job_id: UUID) -> dict[str, Any]:
    """The job with ``events``, ``approval`` and ``upload_progress``."""
    return await read_job(request, str(job_id))


@router.post("/{job_id}/cancel")
async def cancel(request: Request, job_id: UUID) -> dict[str, Any]:
    """Cancels a job that has not finished (a running one's slot is freed); 409 when it
    already finished. Body (optional): ``{"by": ..., "reason": ...}``."""
    by, reason = await _decision_body(request)
    jid = str(job_id)
    verdict = await run(request, job_calls.cancel_job(jid, by, reason), job_id=jid)
    if not verdict.accepted:
        raise HTTPException(409, f"job {jid} was not cancelled: {verdict.reason}")
    await append_event(
        request,
        "job_cancelled",
        "cancel",
        actor="admin",
        target_type="job",
        target_id=jid,
        details={"by": by, "reason": reason, "previous_status": verdict.previous_status},
    )
    return await read_job(request, jid)


async def _decide(request: Request, job_id: UUID, approve: bool) -> dict[str, Any]:
    by, reason = await _decision_body(request)
    jid = str(job_id)
    verb, done = ("approve", "approved") if approve else ("reject", "rejected")
    approval = (await read_job(request, jid))["approval"]
    if not approval:
        raise HTTPException(
            409, f"job {jid} has no approval request; only a job awaiting approval can be {done}"
        )
    build = job_calls.approve_request if approve else job_calls.reject_request
    decision = await run(request, build(str(approval["request_id"]), by, reason), job_id=jid)
    await append_event(
        request,
        f"job_{done}",
        verb,
        actor="admin",
        target_type="job",
        target_id=jid,
        details={
            "by": by,
            "reason": reason,
            "request_id": decision.request_id,
            "job_status": decision.job_status,
        },
    )
    return await read_job(request, jid)


@router.post("/{job_id}/approve")
async def approve(request: Request, job_id: UUID) -> dict[str, Any]:
    """Approves the job's pending approval request (the job becomes claimable). Body
    (optional): ``{"by": ..., "reason": ...}``; 409 when expired, decided or self-approval."""
    return await _decide(request, job_id, True)


@router.post("/{job_id}/reject")
async def reject(request: Request, job_id: UUID) -> dict[str, Any]:
    """Rejects the job's pending approval request (the job is cancelled). Body
    (optional): ``{"by": ..., "reason": ...}``."""
    return await _decide(request, job_id, False)
