"""The Supabase REST transport: ``supabase.rpc('func_insert_logs_batch')`` over httpx."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.db import calls
from orchestrator.db.calls import InsertResult
from orchestrator.db.supabase import RestCallError, SupabaseExecutor
from orchestrator.logs.sinks import DataSinkError, TransientSinkError, abandoned


class RestSink:
    """Sends batches through Supabase's REST API with a :class:`SupabaseExecutor`.

    A 429 or 5xx (or no answer) is a TransientSinkError with the server's Retry-After;
    a 413 (the gateway's size limit) or a class-22 SQLSTATE is a DataSinkError, so the
    handler halves or isolates the batch.
    """

    def __init__(self, url: str, key: str, *, timeout: float = 10.0) -> None:
        self._rest = SupabaseExecutor(url, key, timeout=timeout)
        self.label = self._rest.label

    def _call(self, function: str, args: dict[str, Any]) -> Any:
        try:
            return self._rest.rpc(function, args)
        except RestCallError as error:
            detail = str(error)
            if error.status == 413:
                raise DataSinkError(detail) from None
            if error.transient:
                raise TransientSinkError(detail, error.retry_after) from None
            if error.code and error.code.startswith("22"):
                raise DataSinkError(detail) from None
            raise TransientSinkError(detail, error.retry_after) from None

    def send(self, entries: Sequence[dict[str, Any]]) -> InsertResult:
        call = calls.insert_logs_batch(entries)
        raw = self._call(call.function, dict(call.args))
        try:
            return call.decode(raw)
        except (KeyError, TypeError, ValueError):  # a proxy's page, an empty 204...
            raise TransientSinkError(
                f"HTTP {self._rest.last_status}: not a func_insert_logs_batch result: "
                f"{str(raw)[:200]!r}"
            ) from None

    def check(self) -> None:
        result = self.send([])
        if not result.success:
            raise TransientSinkError(
                result.error or "func_insert_logs_batch refused an empty batch"
            )

    def close(self) -> None:
        self._rest.close()

    def abandon(self) -> None:
        abandoned.append(self._rest.http)
