"""Where batches go: direct PostgreSQL (psycopg) or Supabase REST (supabase-py ``rpc``).

One seam: a sink sends a list of entries and returns an :class:`InsertResult`, or
raises the hub's own errors (:mod:`orchestrator.errors`), as every executor does:
:class:`~orchestrator.errors.InputRefused` when this batch holds something the database
refuses (split it to find the culprit); anything else (:class:`~orchestrator.errors.
DatabaseUnavailable`, with the server's ``retry_after``, or a
:class:`~orchestrator.errors.CallRefused` while migrations or grants are being fixed)
means "keep the batch and retry later".

Validation, repairs and idempotency stay in SQL. Over REST, batches go through
``func_insert_logs_batch``. Over a direct connection a batch goes by binary COPY straight
into ``system_logs`` when it needs none of the repair rules (the common case, and the
fastest path), else through the staged functions of ``sql/functions/logs/ingest.sql`` (COPY into a
staging table, then INSERT ... ON CONFLICT DO NOTHING), which is also where a retried batch
lands: its unique violation sends it there, and the duplicates are counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from orchestrator.logs.calls import InsertResult


class LogSink(Protocol):
    """A destination for batches of ``func_insert_logs_batch`` entries."""

    label: str

    def send(self, entries: Sequence[dict[str, Any]]) -> InsertResult:
        """Inserts the entries, or raises a hub error (see the module docstring)."""
        ...

    def check(self) -> None:
        """Raises a hub error unless the destination is reachable and migrated."""
        ...

    def close(self) -> None:
        """Releases the connection."""
        ...

    def abandon(self) -> None:
        """Drops the connection without closing it (a forked child must not close the
        parent's socket)."""
        ...


# Connections a forked child must never close (closing sends the server a Terminate
# on the socket it shares with the parent); kept referenced so GC does not close them.
abandoned: list[object] = []
