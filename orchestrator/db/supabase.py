"""Executes :class:`~orchestrator.db.calls.Call` values over Supabase REST: supabase-py's
``rpc()`` (PostgREST) on an httpx client of our own.

supabase-py's errors do not carry the HTTP status, so a response hook on our httpx
client notes the status and ``Retry-After`` of each response; a failure becomes one
:class:`RestCallError` that says what happened and carries both, so the log sink can
tell "retry later" from "bad batch" and the CLI can print one line.

Every hub function returns one ``jsonb`` value, so PostgREST's ``max-rows`` cap never
cuts a result; reads stay bounded by their own ``row_limit`` and page by keyset.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

import httpx

from orchestrator.db.calls import Call
from orchestrator.errors import DatabaseUnavailable, HubError

T = TypeVar("T")


class RestCallError(HubError):
    """A REST call that failed: transport error (``status`` 0) or an error response."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """True when the same call may succeed later (no answer, 408, 429, 5xx)."""
        return self.status in (0, 408, 429) or self.status >= 500


class RestUnavailable(RestCallError, DatabaseUnavailable):
    """A REST call that may succeed later: no answer, 408, 429 or 5xx."""


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
        """The raw JSON result of ``POST /rest/v1/rpc/<function>``, or RestCallError."""
        from postgrest.exceptions import APIError

        self._last.status, self._last.retry_after = 0, None
        try:
            return self._client.rpc(function, args).execute().data
        except httpx.HTTPError as error:
            raise RestUnavailable(
                f"{self.label} unreachable: {type(error).__name__}: {error}"
            ) from None
        except APIError as error:
            status = self._last.status
            kind = RestUnavailable if status in (0, 408, 429) or status >= 500 else RestCallError
            raise kind(
                f"HTTP {status}: {error.message or error.details or error.code}",
                status=status,
                code=error.code,
                retry_after=self._last.retry_after,
            ) from None

    def run(self, call: Call[T]) -> T:
        """Executes the call and decodes its result."""
        return call.decode(self.rpc(call.function, dict(call.args)))

    @property
    def http(self) -> httpx.Client:
        """The httpx client underneath (closed by :meth:`close`)."""
        return self._http

    @property
    def broken(self) -> bool:
        """True once closed (httpx replaces a lost connection by itself)."""
        return self._http.is_closed

    def close(self) -> None:
        """Closes the HTTP connections."""
        self._http.close()

    def __enter__(self) -> SupabaseExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
