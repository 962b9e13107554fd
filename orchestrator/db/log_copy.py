"""Binary COPY of log batches over psycopg: straight into ``system_logs``, or staged.

The log handler's fastest path (see :mod:`orchestrator.logs.sinks.postgres`, which
decides which rows may take which path). Pooler-safe (PgBouncer/Supavisor transaction
mode): autocommit statements or one transaction per batch, no prepared statements, no
session state that a later batch relies on (the staging table is re-checked, and
versioned, per batch: ``sql/functions/logs/ingest.sql``). Failures are the hub's own errors
(:func:`~orchestrator.db.psycopg.hub_error`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from orchestrator.db.binary import register_copy_dumpers
from orchestrator.db.psycopg import connect, hub_error
from orchestrator.errors import CallRefused, InputRefused

DIRECT_COLUMNS = (
    "id",
    "timestamp",
    "source_type",
    "source_id",
    "log_level",
    "severity_number",
    "logger_name",
    "message",
    "task_id",
    "worker_id",
    "cycle_number",
    "correlation_id",
    "exception",
    "metadata",
)
DIRECT_TYPES = (
    "uuid",
    "timestamptz",
    "text",
    "text",
    "text",
    "int2",
    "text",
    "text",
    "uuid",
    "text",
    "int4",
    "text",
    "text",
    "jsonb",
)
DIRECT_COPY = f"COPY public.system_logs ({', '.join(DIRECT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

# The staging table (sql/functions/logs/ingest.sql) holds each entry as the client sent
# it: its index in the batch, system_logs' columns as texts but for the time (whole
# microseconds, epoch_us, beside the client's own text of it) and the severity (the
# database's to derive), and the metadata as jsonb.
STAGE_COLUMNS = (
    "ord",
    "id",
    "ts_text",
    "epoch_us",
    *(c for c in DIRECT_COLUMNS if c not in ("id", "timestamp", "severity_number")),
)
STAGE_TYPES = tuple(
    "int4" if c == "ord" else "int8" if c == "epoch_us" else "jsonb" if c == "metadata" else "text"
    for c in STAGE_COLUMNS
)
STAGE_COPY = (
    f"COPY pg_temp.system_logs_stage_v2 ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
)

Row = tuple[Any, ...]


class LogCopier:
    """One psycopg connection for log batches, opened on first use and again after a
    failure; every failure is a hub error, and the connection is dropped with it."""

    def __init__(self, url: str, label: str) -> None:
        self.url, self.label = url, label
        self._conn: psycopg.Connection[Any] | None = None
        self._offset: float | None = None
        self.direct_allowed = True  # False once COPY into system_logs was refused (RLS)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, connect_timeout=5, label=self.label)
            register_copy_dumpers(self._conn)
        return self._conn

    def server_offset(self) -> float:
        """Server clock minus ours in seconds, measured once per connection."""
        if self._offset is None:
            row = self._execute("SELECT extract(epoch FROM now())::float8")
            self._offset = float(row[0]) - time.time()
        return self._offset

    def copy_direct(self, rows: Iterable[Row]) -> bool:
        """COPY straight into system_logs: the fastest path, and all-or-nothing. False
        when the rows must take the staged path instead: a retry of stored rows (unique
        violation), a row the table refuses, or a role that may not COPY (RLS)."""
        if not self.direct_allowed:
            return False
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor().copy(DIRECT_COPY) as copy:
                copy.set_types(DIRECT_TYPES)
                for row in rows:
                    copy.write_row(row)
        except (
            pg_errors.UniqueViolation,
            psycopg.DataError,
            pg_errors.CheckViolation,
            pg_errors.NotNullViolation,
        ):
            return False
        except (pg_errors.FeatureNotSupported, pg_errors.InsufficientPrivilege):
            self.direct_allowed = False
            return False
        except psycopg.Error as error:
            raise self._failed(error) from None
        return True

    def insert_staged(self, rows: Iterable[Row]) -> Any:
        """One transaction: stage by binary COPY, then INSERT ... ON CONFLICT
        (sql/functions/logs/ingest.sql); the raw result of ``func_insert_staged_logs``."""
        conn = self._connection()
        try:
            with conn.transaction():
                conn.execute("SELECT public.func_prepare_log_stage()")
                with conn.cursor().copy(STAGE_COPY) as copy:
                    copy.set_types(STAGE_TYPES)
                    for row in rows:
                        copy.write_row(row)
                result = conn.execute("SELECT public.func_insert_staged_logs()").fetchone()
        except psycopg.Error as error:
            raise self._failed(error) from None
        assert result is not None
        return result[0]

    def check(self) -> None:
        """Raises a hub error unless the database is reachable and migrated."""
        row = self._execute(
            "SELECT to_regprocedure('public.func_insert_staged_logs()') IS NOT NULL"
        )
        if not row[0]:
            raise CallRefused(
                f"{self.label} lacks func_insert_staged_logs(): run `orchestrator migrate`"
            )

    def _execute(self, statement: str) -> tuple[Any, ...]:
        try:
            row: tuple[Any, ...] | None = self._connection().execute(statement).fetchone()
        except psycopg.Error as error:
            raise self._failed(error) from None
        assert row is not None
        return row

    def _failed(self, error: psycopg.Error) -> Exception:
        conn = self._conn
        failure = hub_error(error, self.label, lost=conn is None or conn.closed or conn.broken)
        if not isinstance(failure, InputRefused):  # the batch's fault: the session is fine
            self.close()
        return failure

    def close(self) -> None:
        """Closes the connection (the next batch opens a new one)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to save
                self._conn.close()
            self._conn = None
            self._offset = None

    def abandon(self) -> Any:
        """Forgets the connection without closing it and returns it (a forked child must
        not close its parent's socket)."""
        conn, self._conn, self._offset = self._conn, None, None
        return conn
