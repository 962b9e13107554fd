"""One executor for whichever database the settings name, for readers such as the CLI.

``DATABASE_URL`` (any PostgreSQL, Supabase's included) runs calls over psycopg; else
``SUPABASE_URL`` + ``SUPABASE_SERVICE_ROLE_KEY`` over Supabase REST; else the embedded
server. Whatever the driver, a database that cannot be reached is one
:class:`~orchestrator.errors.DatabaseUnavailable` and input the database refuses is one
:class:`~orchestrator.errors.QueryInputError`, so callers print one line, or (a live
tail) wait and call again: the next call reconnects by itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

import psycopg

from orchestrator.config import Settings
from orchestrator.db.calls import Call, CallExecutor
from orchestrator.db.embedded import start_embedded
from orchestrator.db.psycopg import PsycopgExecutor, connect
from orchestrator.db.target import describe_url
from orchestrator.errors import ConfigError, DatabaseUnavailable, QueryInputError

T = TypeVar("T")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class PsycopgSession:
    """Runs calls on a psycopg connection opened on first use and again after a loss."""

    def __init__(self, url: str, label: str, *, connect_timeout: int = 5) -> None:
        self.url = url
        self.label = label
        self._timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None

    def run(self, call: Call[T]) -> T:
        """Executes the call, connecting first when there is no live connection."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, connect_timeout=self._timeout)
        try:
            return PsycopgExecutor(self._conn).run(call)
        except psycopg.OperationalError as error:
            self.close()
            raise DatabaseUnavailable(
                f"lost the connection to {self.label}: {_first_line(error)}"
            ) from None
        except psycopg.DataError as error:  # SQLSTATE class 22: the input
            raise QueryInputError(error.diag.message_primary or _first_line(error)) from None
        except psycopg.errors.UndefinedFunction as error:
            raise DatabaseUnavailable(
                f"{self.label} lacks a hub function ({_first_line(error)}); "
                "run `orchestrator migrate`"
            ) from None

    def close(self) -> None:
        """Closes the connection (the next call opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def rest_credentials(settings: Settings) -> tuple[str, str] | None:
    """``(SUPABASE_URL, service_role key)`` when calls go over Supabase REST: Supabase
    settings and no ``DATABASE_URL`` (which wins). A URL without its key is refused."""
    if settings.database_url or not settings.supabase_url:
        return None
    if settings.supabase_service_role_key is None:
        raise ConfigError(
            "SUPABASE_URL is set without SUPABASE_SERVICE_ROLE_KEY: set the project's "
            "service_role key, or DATABASE_URL instead"
        )
    return settings.supabase_url, settings.supabase_service_role_key.get_secret_value()


@contextlib.contextmanager
def open_executor(settings: Settings) -> Iterator[CallExecutor]:
    """Yields an executor for the configured database; closes (and stops) it on exit."""
    if settings.database_url:
        session = PsycopgSession(settings.database_url, describe_url(settings.database_url))
        try:
            yield session
        finally:
            session.close()
        return
    rest = rest_credentials(settings)
    if rest is not None:
        from orchestrator.db.supabase import SupabaseExecutor

        with SupabaseExecutor(*rest) as executor:
            yield executor
        return
    server = start_embedded(settings.embedded_data_dir)
    session = PsycopgSession(server.url, f"embedded PostgreSQL in {server.data_dir}")
    try:
        yield session
    finally:
        session.close()
        server.stop()
