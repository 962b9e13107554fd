"""Every error body is ``{"detail": "<one line>"}`` naming what is wrong and what is accepted.

FastAPI answers validation errors with a list of objects (422) and Starlette unknown
paths with plain ``{"detail": "Not Found"}``; the handlers here turn each into one line,
and map the hub's own errors: a database that cannot be reached is 503 with
``Retry-After``, input the database refused is 422, anything unexpected is 500 naming the
correlation id to look up in the logs (never a traceback in a response).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request

from orchestrator.errors import DatabaseUnavailable, HubError, InputRefused, first_line

logger = logging.getLogger("orchestrator.server")

_WHERE = {
    "query": "query parameter",
    "path": "path parameter",
    "body": "body field",
    "header": "header",
}


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape: ``{"detail": <first line of detail>}``."""
    return JSONResponse({"detail": first_line(Exception(detail))}, status, headers=headers)


def describe_validation(error: RequestValidationError) -> str:
    """FastAPI's first validation error as one line: where, which, what was sent, why."""
    errors = error.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    where = _WHERE.get(loc[0], loc[0]) if loc else "request"
    name = ".".join(loc[1:]) or "(whole body)"
    message = str(first.get("msg", "invalid value")).rstrip(".")
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {message}"
    if first.get("type") == "missing":
        return f"missing {where} {name}"
    sent = first.get("input")
    shown = "" if isinstance(sent, dict | list) or sent is None else f"={str(sent)[:80]!r}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid {where} {name}{shown}: {message}{more}"


def _correlation(request: Request) -> str:
    return str(getattr(request.state, "correlation_id", None) or "none")


async def _http_error(request: Request, exc: Any) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; see /docs for the API"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, detail, getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Any) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, describe_validation(exc))


async def _hub_error(request: Request, exc: Any) -> JSONResponse:
    if isinstance(exc, DatabaseUnavailable):
        retry = str(max(1, round(exc.retry_after or 5)))
        return error_response(503, f"database unavailable: {exc}", {"Retry-After": retry})
    if isinstance(exc, InputRefused):
        return error_response(422, str(exc))
    logger.error("Request %s %s failed: %s", request.method, request.url.path, exc)
    return error_response(500, f"{exc}")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("Unexpected error in %s %s", request.method, request.url.path)
    cid = _correlation(request)
    return error_response(
        500,
        f"internal error; the server log has the details under correlation id {cid}",
        {"X-Correlation-ID": cid},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Registers the one-line handlers on ``app``."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HubError, _hub_error)
    app.add_exception_handler(Exception, _unexpected)
