"""Executes :class:`~orchestrator.db.calls.Call` values over psycopg 3 (sync).

Pooler-safe by construction: autocommit, no server-side prepared statements
(``prepare_threshold=None``) and no session state, so the same code runs through
PgBouncer or Supavisor in transaction mode. Every psycopg exception is turned into the
hub's own one-line error here (:func:`hub_error`), so none reaches the worker, the CLI
or the dashboard.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_loads

from orchestrator.db.calls import Call
from orchestrator.db.failures import refusal
from orchestrator.db.jsonsafe import dumps_json
from orchestrator.db.statement import call_sql
from orchestrator.errors import DatabaseUnavailable, HubError, first_line

T = TypeVar("T")


# 19 digits in a row may be an integer beyond 64 bits, which orjson reads as a float.
_LONG_DIGITS = re.compile(rb"\d{19}")


def json_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """JSON results decoded by orjson (a 1,000-row page of logs in 1.6 ms against the
    standard library's 4.0 ms), by the standard library where orjson would not keep
    every value exactly (an integer beyond 64 bits, which jsonb holds, becomes a float
    there)."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if not _LONG_DIGITS.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def connect(
    conninfo: str, *, connect_timeout: int = 10, label: str = "the database"
) -> psycopg.Connection[Any]:
    """Opens an autocommit, pooler-safe connection, or raises :class:`DatabaseUnavailable`."""
    try:
        conn = psycopg.connect(
            conninfo, autocommit=True, prepare_threshold=None, connect_timeout=connect_timeout
        )
    except psycopg.Error as error:
        raise DatabaseUnavailable(f"cannot connect to {label}: {first_line(error)}") from None
    set_json_loads(json_loads, conn)
    return conn


def hub_error(error: psycopg.Error, label: str, *, lost: bool = False) -> HubError:
    """The hub's error for a psycopg exception: a connection that is gone (``lost``, or
    no SQLSTATE: the client noticed) is :class:`DatabaseUnavailable`; a server refusal
    is judged by its SQLSTATE (:func:`~orchestrator.db.failures.refusal`)."""
    if lost or error.sqlstate is None:
        return DatabaseUnavailable(f"lost the connection to {label}: {first_line(error)}")
    return refusal(error.sqlstate, error.diag.message_primary or first_line(error), label)


def call_statement(call: Call[Any]) -> sql.SQL:
    """``SELECT public.func(name => %(name)s, ...)``: the shared text of :mod:`statement`."""
    return sql.SQL(call_sql(call, "pyformat"))


def _adapt(value: Any) -> Any:
    """JSON values go as text of no declared type, so the server reads them as the
    parameter's own type: json (the insert functions take json, which keeps what jsonb
    would refuse until they repair it) or jsonb."""
    return dumps_json(value) if isinstance(value, dict | list) else value


class PsycopgExecutor:
    """Runs calls on one psycopg connection; one executor per thread."""

    def __init__(self, conn: psycopg.Connection[Any], label: str = "the database") -> None:
        self.conn = conn
        self.label = label

    @classmethod
    def connect(cls, conninfo: str, label: str = "the database") -> PsycopgExecutor:
        """Connects to ``conninfo`` (a URL or libpq key=value string)."""
        return cls(connect(conninfo, label=label), label)

    def run(self, call: Call[T]) -> T:
        """Executes the call and decodes its ``jsonb`` result; failures are hub errors."""
        args = {name: _adapt(value) for name, value in call.args.items()}
        try:
            row = self.conn.execute(call_statement(call), args).fetchone()
        except psycopg.Error as error:
            raise hub_error(error, self.label, lost=self.broken) from None
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


class PsycopgSession:
    """Runs calls on a connection opened on first use and again after a loss, so a
    long-lived reader or worker survives a database restart at the cost of one call."""

    def __init__(self, url: str, label: str, *, connect_timeout: int = 5) -> None:
        self.url = url
        self.label = label
        self._timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None

    def run(self, call: Call[T]) -> T:
        """Executes the call, connecting first when there is no live connection."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, connect_timeout=self._timeout, label=self.label)
        executor = PsycopgExecutor(self._conn, self.label)
        try:
            return executor.run(call)
        except DatabaseUnavailable:
            if executor.broken:
                self.close()
            raise

    def close(self) -> None:
        """Closes the connection (the next call opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def listen(
    url: str,
    channel: str,
    on_notify: Callable[[str], None],
    stop: threading.Event,
    *,
    on_listening: Callable[[], None] = lambda: None,
) -> None:
    """``LISTEN channel`` on a connection of its own, calling ``on_notify(payload)`` for
    each notification until ``stop`` is set; :class:`DatabaseUnavailable` when the
    connection cannot be had or is lost. ``on_listening`` runs once the LISTEN holds."""
    with connect(url) as conn:
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            on_listening()
            while not stop.is_set():
                # A short timeout lets the caller's stop end this loop without a cancel.
                for note in conn.notifies(timeout=0.5):
                    on_notify(note.payload)
        except psycopg.Error as error:
            raise hub_error(error, "the LISTEN connection", lost=True) from None
