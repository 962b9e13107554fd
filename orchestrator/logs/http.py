"""HTTP clients that carry the caller's correlation id on every outbound request.

The ``X-Correlation-ID`` header is added by a request event hook, so it is read when
each request is sent, on the caller's thread or asyncio task. SimpleTuner put it in the
client's default headers instead, and a pooled client kept sending the id of whichever
request created it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# httpx here is the caller's client for other services, not of our database: the one
# place besides providers/http.py outside orchestrator/db/ that may import it
# (tests/unit/test_one_home_rules.py).
import httpx

from orchestrator.logs.context import get_correlation_id

CORRELATION_HEADER = "X-Correlation-ID"

Hooks = Mapping[str, list[Callable[..., Any]]]


def _add_correlation_id(request: httpx.Request) -> None:
    """Sets the header from the current context unless the request already has one."""
    if CORRELATION_HEADER not in request.headers:
        request.headers[CORRELATION_HEADER] = get_correlation_id()


async def _add_correlation_id_async(request: httpx.Request) -> None:
    """The async client's hook (httpx awaits every hook of an AsyncClient)."""
    _add_correlation_id(request)


def _merged_hooks(ours: Callable[..., Any], given: Hooks | None) -> dict[str, list[Any]]:
    """The caller's hooks with ours first, so theirs see (and may replace) the header."""
    hooks: dict[str, list[Any]] = {name: list(fns) for name, fns in (given or {}).items()}
    hooks["request"] = [ours, *hooks.get("request", [])]
    return hooks


def get_client(**kwargs: Any) -> httpx.Client:
    """An :class:`httpx.Client` (same arguments) sending the current correlation id.

    A header set on a request is kept; one set in the client's ``headers=`` is kept
    too, and then frozen, so set it per request when you must set it by hand.
    """
    hooks = _merged_hooks(_add_correlation_id, kwargs.pop("event_hooks", None))
    return httpx.Client(event_hooks=hooks, **kwargs)


def get_async_client(**kwargs: Any) -> httpx.AsyncClient:
    """An :class:`httpx.AsyncClient` (same arguments) sending the current correlation id.

    Safe to share between tasks: each request carries the id of the task that sent it.
    User hooks must be async functions, as httpx requires for this client.
    """
    hooks = _merged_hooks(_add_correlation_id_async, kwargs.pop("event_hooks", None))
    return httpx.AsyncClient(event_hooks=hooks, **kwargs)
