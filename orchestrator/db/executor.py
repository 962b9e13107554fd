"""One executor for whichever database the settings name, for readers such as the CLI.

The database comes from :func:`~orchestrator.db.target.resolve_database`; a SQL target
runs calls over a reconnecting psycopg session, a REST target over supabase-py. Either
way a database that cannot be reached is one
:class:`~orchestrator.errors.DatabaseUnavailable` and input the database refuses is one
:class:`~orchestrator.errors.InputRefused`, so callers print one line, or (a live
tail) wait and call again: the next call reconnects by itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

from orchestrator.config import Settings
from orchestrator.db.calls import CallExecutor
from orchestrator.db.psycopg import PsycopgSession
from orchestrator.db.target import SqlTarget, Target, resolve_database


class ClosableExecutor(CallExecutor, Protocol):
    """An executor that heals after a lost connection and holds one until closed."""

    def close(self) -> None: ...


def executor_for(target: Target) -> ClosableExecutor:
    """A new executor on ``target`` (psycopg for SQL, supabase-py for REST)."""
    if isinstance(target, SqlTarget):
        return PsycopgSession(target.url, target.label)
    from orchestrator.db.supabase import SupabaseExecutor

    return SupabaseExecutor(target.url, target.key)


@contextlib.contextmanager
def open_executor(
    settings: Settings, *, prepare: Callable[[Target], object] | None = None
) -> Iterator[CallExecutor]:
    """Yields an executor for the configured database; closes (and stops) it on exit.

    ``prepare(target)`` runs first (the CLI checks the schema there)."""
    with resolve_database(settings) as target:
        if prepare is not None:
            prepare(target)
        executor = executor_for(target)
        try:
            yield executor
        finally:
            executor.close()
