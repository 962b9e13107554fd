"""Executes :class:`~orchestrator.db.calls.Call` values over Supabase REST: supabase-py's
``rpc()`` (PostgREST) on an httpx client of our own.

supabase-py's errors do not carry the HTTP status, so a response hook on our httpx
client notes the status and ``Retry-After`` of each response. A failure becomes the
hub's own error (:mod:`orchestrator.errors`), judged as for the SQL drivers: no answer,
408, 429 and 5xx are :class:`DatabaseUnavailable` (with the server's ``Retry-After``);
413 (the gateway's size limit) is :class:`InputRefused`, so a log batch is split; any
other refusal is judged by the SQLSTATE PostgREST passes on as ``code``
(:func:`~orchestrator.db.failures.refusal`), or is :class:`CallRefused` (401 wrong key,
404 no such function).

Every hub function returns one ``jsonb`` value, so PostgREST's ``max-rows`` cap never
cuts a result; reads stay bounded by their own ``row_limit`` and page by keyset.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

import httpx

from orchestrator.db.calls import Call
from orchestrator.db.failures import refusal
from orchestrator.errors import DatabaseUnavailable, HubError, InputRefused

T = TypeVar("T")


def _is_transient(status: int) -> bool:
    """No answer, 408, 429 or 5xx: the same call may succeed later."""
    return status in (0, 408, 429) or status >= 500


class _LastResponse(threading.local):
    status: int = 0
    retry_after: float | None = None


class SupabaseExecutor:
    """Runs calls through ``supabase.rpc(function, args)``; safe to share between threads."""

    def __init__(self, url: str, key: str, *, timeout: float = 10.0) -> None:
        from supabase import ClientOptions, create_client

        self.label = f"Supabase REST at {url}"
        self._last = _LastResponse()
        self._http = httpx.Client(timeout=timeout, event_hooks={"response": [self._note]})
        options = ClientOptions(httpx_client=self._http, postgrest_client_timeout=timeout)
        self._client = create_client(url, key, options=options)

    def _note(self, response: httpx.Response) -> None:
        self._last.status = response.status_code
        header = response.headers.get("Retry-After")
        try:
            self._last.retry_after = float(header) if header is not None else None
        except ValueError:
            self._last.retry_after = None

    @property
    def last_status(self) -> int:
        """HTTP status of this thread's latest response (0: none)."""
        return self._last.status

    def rpc(self, function: str, args: dict[str, Any]) -> Any:
        """The raw JSON result of ``POST /rest/v1/rpc/<function>``, or a hub error."""
        from postgrest.exceptions import APIError

        self._last.status, self._last.retry_after = 0, None
        try:
            return self._client.rpc(function, args).execute().data
        except httpx.HTTPError as error:
            raise DatabaseUnavailable(
                f"{self.label} unreachable: {type(error).__name__}: {error}"
            ) from None
        except APIError as error:
            raise self._refusal(error.code, error.message or error.details or error.code) from None

    def _refusal(self, code: str | None, detail: str | None) -> HubError:
        status, retry_after = self._last.status, self._last.retry_after
        message = f"HTTP {status}: {detail}"
        if _is_transient(status):
            return DatabaseUnavailable(message, retry_after=retry_after)
        if status == 413:
            return InputRefused(message)
        return refusal(code, message, self.label)

    def run(self, call: Call[T]) -> T:
        """Executes the call and decodes its result. An answer that is not the
        function's (a proxy's page, a captive portal, an empty 204) is
        :class:`DatabaseUnavailable`: the gateway did not reach the database."""
        raw = self.rpc(call.function, dict(call.args))
        try:
            return call.decode(raw)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise DatabaseUnavailable(
                f"HTTP {self.last_status}: not a {call.function} result: {str(raw)[:200]!r}"
            ) from None

    @property
    def http(self) -> httpx.Client:
        """The httpx client underneath (closed by :meth:`close`)."""
        return self._http

    def close(self) -> None:
        """Closes the HTTP connections."""
        self._http.close()

    def __enter__(self) -> SupabaseExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
