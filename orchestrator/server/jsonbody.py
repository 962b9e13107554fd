"""Reading an admin route's JSON body: capped, parsed, and refused in one line when it
cannot reach PostgreSQL as sent.

FastAPI's own body models answer a list of objects and accept what ``jsonb`` then
refuses with a line that names nothing (a ``\\u0000`` in a string, ``NaN``, a lone
surrogate). The jobs API hands the object to the SQL function as it is, so the
function's own line names what is wrong; this only refuses what would never get there,
naming where it is (``payload.args[2]``) and what is accepted.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect

MAX_ADMIN_BODY = 2 << 20
"""Bytes of an admin JSON body (func_submit_job takes a job of at most 1 MiB; escapes
and whitespace may double that)."""


async def read_object(
    request: Request, *, limit: int = MAX_ADMIN_BODY, empty_ok: bool = False
) -> dict[str, Any]:
    """The body as a JSON object, or an HTTPException (400 client gone, 413, 422) with
    one line."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(
            413, f"the request body is {declared} bytes; at most {limit} are accepted"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(
                    413, f"the request body is over {limit} bytes; at most {limit} are accepted"
                )
            chunks.append(chunk)
    except ClientDisconnect:  # nobody reads the answer; nothing was written
        raise HTTPException(400, "the client went away before sending the whole body") from None
    raw = b"".join(chunks)
    if not raw.strip():
        if empty_ok:
            return {}
        raise HTTPException(422, "the request body is empty: send a JSON object")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as error:
        raise HTTPException(
            422, f"the request body is not UTF-8: {error.reason} at byte {error.start}"
        ) from None
    except RecursionError:
        raise HTTPException(422, "the request body is nested too deeply") from None
    except ValueError as error:
        raise HTTPException(422, f"the request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise HTTPException(
            422, f"the request body must be a JSON object, got a JSON {_kind(value)}"
        )
    problem = find_unstorable(value)
    if problem is not None:
        raise HTTPException(422, problem)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (finite numbers only)")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which PostgreSQL text cannot hold"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (an invalid \\ud800-\\udfff escape); send valid Unicode"
    return None


def find_unstorable(value: Any) -> str | None:
    """One line naming the first text ``jsonb`` refuses or number out of range in
    ``value`` (walked without recursion), or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, member in reversed(list(item.items())):
                where = f"{path}.{key}" if path else str(key)
                problem = _text_problem(str(key))
                if problem is not None:
                    return f"the key {where!r} {problem}"
                stack.append((where, member))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", member) for i, member in reversed(list(enumerate(item))))
        elif isinstance(item, str):
            problem = _text_problem(item)
            if problem is not None:
                return f"{path or 'the body'} {problem}"
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{path or 'the body'} is a number out of range (finite numbers only)"
    return None
