"""Executes :class:`~orchestrator.db.calls.Call` values over asyncpg (the async daemon).

The statement text is :func:`~orchestrator.db.statement.call_sql`'s, the same one psycopg
runs, so both drivers execute an operation identically. Pooler-safe like the psycopg
executor: ``statement_cache_size=0`` (asyncpg then uses only the unnamed prepared
statement, which PgBouncer and Supavisor in transaction mode pass through), no session
state. Call arguments are JSON-compatible values, so the connection gets codecs that
take them as they are: ``jsonb``/``json`` from Python objects, and timestamps from ISO
strings (asyncpg's own codec wants ``datetime`` objects).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

import asyncpg
import orjson

from orchestrator.db.calls import Call
from orchestrator.db.failures import refusal
from orchestrator.db.jsonsafe import dumps_json
from orchestrator.db.statement import call_sql
from orchestrator.errors import DatabaseUnavailable, first_line

T = TypeVar("T")

# What a lost or refused connection raises: the server went away (08xxx, 57Pxx), the
# socket broke, asyncpg noticed the connection is closed, or connecting timed out.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
)
# Connecting may also be refused by the server itself: unknown database or role.
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)


def _temporal_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    raise TypeError(f"expected an ISO string or a datetime, got {type(value).__name__}")


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    """Codecs for JSON-compatible call arguments (and ``jsonb`` results as Python)."""
    for json_type in ("jsonb", "json"):
        await conn.set_type_codec(
            json_type,
            schema="pg_catalog",
            encoder=dumps_json,
            decoder=orjson.loads,
            format="text",
        )
    for temporal in ("timestamptz", "timestamp", "date", "interval"):
        await conn.set_type_codec(
            temporal, schema="pg_catalog", encoder=_temporal_text, decoder=str, format="text"
        )


async def connect(
    dsn: str, *, timeout: float = 10, label: str = "the database"
) -> asyncpg.Connection[Any]:
    """Opens a pooler-safe connection with the hub's codecs, or raises
    :class:`DatabaseUnavailable` with the reason on one line."""
    try:
        conn: asyncpg.Connection[Any] = await asyncpg.connect(
            dsn, statement_cache_size=0, timeout=timeout
        )
    except CONNECT_ERRORS as error:
        raise DatabaseUnavailable(f"cannot connect to {label}: {first_line(error)}") from None
    try:
        await _init_connection(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


async def call_on(
    conn: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any],
    call: Call[T],
    label: str = "the database",
) -> T:
    """Runs one call on ``conn``: the shared statement text, arguments in order. A lost
    connection is :class:`DatabaseUnavailable`; a server refusal is judged by its
    SQLSTATE (:func:`~orchestrator.db.failures.refusal`), as for every driver."""
    try:
        raw = await conn.fetchval(call_sql(call, "numeric"), *call.args.values())
    except CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(f"lost the connection to {label}: {first_line(error)}") from None
    except asyncpg.PostgresError as error:
        raise refusal(error.sqlstate, first_line(error), label) from None
    return call.decode(raw)


async def _no_reset(conn: asyncpg.Connection[Any]) -> None:
    """The hub keeps no session state, so a released connection needs no reset query
    (asyncpg's default costs a round trip per call, and means nothing behind a pooler)."""


class AsyncpgExecutor:
    """Runs calls over a small asyncpg pool, so the daemon's duties may call at once.

    A connection that was lost is replaced by the pool on a later call: the call that
    saw the loss raises :class:`DatabaseUnavailable` (it may or may not have run), the
    next one connects afresh, so a long-running daemon survives a database restart.
    """

    def __init__(self, pool: asyncpg.Pool[Any], label: str = "the database") -> None:
        self.pool = pool
        self.label = label

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        max_size: int = 4,
        min_size: int = 1,
        timeout: float = 10,
        label: str = "the database",
    ) -> AsyncpgExecutor:
        """Opens a pool of up to ``max_size`` connections to ``dsn`` (``min_size`` at
        first and kept open; 0 opens them on demand, so an outage is not retried in the
        background and logged every second)."""
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                statement_cache_size=0,
                timeout=timeout,
                init=_init_connection,
                reset=_no_reset,
            )
        except CONNECT_ERRORS as error:
            raise DatabaseUnavailable(f"cannot connect to {label}: {first_line(error)}") from None
        return cls(pool, label)

    async def run(self, call: Call[T]) -> T:
        """Executes the call on a free connection and decodes its ``jsonb`` result."""
        try:
            async with self.pool.acquire() as conn:
                return await call_on(conn, call, self.label)
        except CONNECTION_ERRORS as error:  # acquiring may connect, and fail to
            raise DatabaseUnavailable(f"cannot reach {self.label}: {first_line(error)}") from None

    async def close(self, timeout: float = 5) -> None:
        """Closes the pool, waiting at most ``timeout`` s for calls in progress."""
        try:
            await asyncio.wait_for(self.pool.close(), timeout)
        except CONNECTION_ERRORS:  # TimeoutError is one of them
            self.pool.terminate()

    async def __aenter__(self) -> AsyncpgExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncListener:
    """``LISTEN channel`` on a connection of its own, calling ``on_notify(payload)`` for
    each notification (asyncpg delivers them on the event loop)."""

    def __init__(self, conn: asyncpg.Connection[Any]) -> None:
        self._conn = conn

    @classmethod
    async def start(cls, dsn: str, channel: str, on_notify: Callable[[str], None]) -> AsyncListener:
        """Connects and LISTENs, or raises :class:`DatabaseUnavailable` saying why not."""
        conn = await connect(dsn, label="the LISTEN connection")

        def deliver(connection: Any, pid: int, name: str, payload: object) -> None:
            on_notify(str(payload))

        try:
            await conn.add_listener(channel, deliver)
        except CONNECT_ERRORS as error:
            conn.terminate()
            raise DatabaseUnavailable(f"cannot LISTEN {channel}: {first_line(error)}") from None
        return cls(conn)

    @property
    def alive(self) -> bool:
        """True while the LISTEN connection is open."""
        return not self._conn.is_closed()

    async def close(self) -> None:
        """Stops listening and closes the connection."""
        if self._conn.is_closed():
            return
        try:
            await self._conn.close(timeout=5)
        except CONNECT_ERRORS:
            self._conn.terminate()
