"""Executes :class:`~orchestrator.db.calls.Call` values over psycopg 3 (sync).

Pooler-safe by construction: autocommit, no server-side prepared statements
(``prepare_threshold=None``) and no session state, so the same code runs through
PgBouncer or Supavisor in transaction mode.
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from orchestrator.db.calls import Call
from orchestrator.db.statement import call_sql
from orchestrator.errors import DatabaseUnavailable

T = TypeVar("T")


def connect(conninfo: str, *, connect_timeout: int = 10) -> psycopg.Connection[Any]:
    """Opens an autocommit, pooler-safe connection, or raises :class:`DatabaseUnavailable`."""
    try:
        return psycopg.connect(
            conninfo, autocommit=True, prepare_threshold=None, connect_timeout=connect_timeout
        )
    except psycopg.OperationalError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise DatabaseUnavailable(f"cannot connect to the database: {first_line}") from None


def call_statement(call: Call[Any]) -> sql.SQL:
    """``SELECT public.func(name => %(name)s, ...)``: the shared text of :mod:`statement`."""
    return sql.SQL(call_sql(call, "pyformat"))


def _adapt(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict | list) else value


class PsycopgExecutor:
    """Runs calls on one psycopg connection; one executor per thread."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @classmethod
    def connect(cls, conninfo: str) -> PsycopgExecutor:
        """Connects to ``conninfo`` (a URL or libpq key=value string)."""
        return cls(connect(conninfo))

    def run(self, call: Call[T]) -> T:
        """Executes the call and decodes its ``jsonb`` result."""
        args = {name: _adapt(value) for name, value in call.args.items()}
        row = self.conn.execute(call_statement(call), args).fetchone()
        assert row is not None
        return call.decode(row[0])

    @property
    def broken(self) -> bool:
        """True once the connection is closed or lost: open a new executor."""
        return self.conn.closed or self.conn.broken

    def close(self) -> None:
        """Closes the connection."""
        self.conn.close()

    def __enter__(self) -> PsycopgExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
