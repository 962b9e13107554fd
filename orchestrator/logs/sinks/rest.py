"""The Supabase REST transport: ``supabase.rpc('func_insert_logs_batch')`` over httpx."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.db.supabase import SupabaseExecutor
from orchestrator.errors import DatabaseUnavailable
from orchestrator.logs.calls import InsertResult, insert_logs_batch
from orchestrator.logs.sinks import abandoned


class RestSink:
    """Sends batches through Supabase's REST API with a :class:`SupabaseExecutor`, whose
    errors are already the ones a sink raises: a 429, 5xx or no answer is
    DatabaseUnavailable with the server's Retry-After; a 413 (the gateway's size
    limit) or a class-22 SQLSTATE is InputRefused, so the handler halves or isolates
    the batch; a wrong key or a missing function is CallRefused (retried later)."""

    def __init__(self, url: str, key: str, *, timeout: float = 10.0) -> None:
        self.executor = SupabaseExecutor(url, key, timeout=timeout)
        self.label = self.executor.label

    def send(self, entries: Sequence[dict[str, Any]]) -> InsertResult:
        """Inserts the entries with one ``func_insert_logs_batch`` call."""
        return self.executor.run(insert_logs_batch(entries))

    def check(self) -> None:
        """An empty batch: proves the gateway, the key and the function."""
        result = self.send([])
        if not result.success:
            raise DatabaseUnavailable(
                result.error or "func_insert_logs_batch refused an empty batch"
            )

    def close(self) -> None:
        """Closes the HTTP connections."""
        self.executor.close()

    def abandon(self) -> None:
        """Forgets the HTTP client without closing it (a forked child)."""
        abandoned.append(self.executor.http)
