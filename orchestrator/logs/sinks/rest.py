"""The Supabase REST transport: ``supabase.rpc('func_insert_logs_batch')`` over httpx."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx

from orchestrator.db import calls
from orchestrator.db.calls import InsertResult
from orchestrator.logs.sinks import DataSinkError, TransientSinkError, abandoned


class _LastResponse(threading.local):
    status: int = 0
    retry_after: float | None = None


class RestSink:
    """Sends batches through Supabase's REST API: ``supabase.rpc('func_insert_logs_batch')``.

    supabase-py's errors do not carry the HTTP status, so a response hook on our own
    httpx client notes the status and ``Retry-After`` of each response; a 429 or 5xx
    becomes a TransientSinkError with the server's delay.
    """

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

    def _call(self, function: str, args: dict[str, Any]) -> Any:
        from postgrest.exceptions import APIError

        self._last.status, self._last.retry_after = 0, None
        try:
            return self._client.rpc(function, args).execute().data
        except httpx.HTTPError as error:
            raise TransientSinkError(f"{type(error).__name__}: {error}") from None
        except APIError as error:
            status = self._last.status
            detail = f"HTTP {status}: {error.message or error.details or error.code}"
            if status == 413:  # the gateway's size limit: halving the batch gets through
                raise DataSinkError(detail) from None
            if status == 429 or status >= 500 or status in (0, 408):
                raise TransientSinkError(detail, self._last.retry_after) from None
            if error.code and error.code.startswith("22"):
                raise DataSinkError(detail) from None
            raise TransientSinkError(detail, self._last.retry_after) from None

    def send(self, entries: Sequence[dict[str, Any]]) -> InsertResult:
        call = calls.insert_logs_batch(entries)
        raw = self._call(call.function, dict(call.args))
        try:
            return call.decode(raw)
        except (KeyError, TypeError, ValueError):  # a proxy's page, an empty 204...
            raise TransientSinkError(
                f"HTTP {self._last.status}: not a func_insert_logs_batch result: {str(raw)[:200]!r}"
            ) from None

    def check(self) -> None:
        result = self.send([])
        if not result.success:
            raise TransientSinkError(
                result.error or "func_insert_logs_batch refused an empty batch"
            )

    def close(self) -> None:
        self._http.close()

    def abandon(self) -> None:
        abandoned.append(self._http)
