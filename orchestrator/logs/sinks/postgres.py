"""The direct PostgreSQL transport (psycopg): COPY for clean batches, staged otherwise.

Pooler-safe (PgBouncer/Supavisor transaction mode): autocommit statements or one
transaction per batch, no prepared statements, no session state that a later batch
relies on (the staging table is re-checked, and versioned, per batch).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from orchestrator.db import calls
from orchestrator.db.binary import register_copy_dumpers
from orchestrator.db.calls import InsertResult
from orchestrator.db.jsonsafe import dumps_json
from orchestrator.db.psycopg import PsycopgExecutor, connect
from orchestrator.errors import DatabaseUnavailable
from orchestrator.logs.sinks import DataSinkError, TransientSinkError, abandoned, one_line

_TRANSIENT_SQLSTATES = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
    pg_errors.QueryCanceled,
    pg_errors.AdminShutdown,
    pg_errors.CannotConnectNow,
    pg_errors.TooManyConnections,
    pg_errors.UndefinedFunction,  # migrations not applied yet: buffer and retry
    pg_errors.InsufficientPrivilege,  # grants being fixed: buffer and retry
)


STAGE_COLUMNS = (
    "id",
    "epoch_us",
    "source_type",
    "source_id",
    "log_level",
    "logger_name",
    "message",
    "task_id",
    "worker_id",
    "cycle_number",
    "correlation_id",
    "exception",
    "metadata",
)
STAGE_TYPES = (
    "text",
    "int8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int4",
    "text",
    "text",
    "text",  # metadata as JSON text (orjson on our side, one cast on theirs)
)
STAGE_COPY = (
    f"COPY pg_temp.system_logs_stage_v1 ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
)


def epoch_microseconds(seconds: float) -> int:
    """Whole microseconds of a Unix time. Both paths of the sink turn an entry's float
    time into this same integer, so a batch retried on the other path carries the same
    ("timestamp", id) key and is recognised as a duplicate (float rounding in Python and
    in PostgreSQL can differ by one microsecond)."""
    return round(seconds * 1_000_000)


def _stage_row(entry: dict[str, Any]) -> tuple[Any, ...]:
    """An entry built by the handler (see snapshot.to_entry) as a staging-table row."""
    cycle = entry.get("cycle_number")
    return (
        entry["id"],
        epoch_microseconds(entry["timestamp"]),
        entry["source_type"],
        entry["source_id"],
        entry["log_level"],
        entry.get("logger_name"),
        entry["message"],
        entry.get("task_id"),
        entry.get("worker_id"),
        cycle if isinstance(cycle, int) else None,
        entry.get("correlation_id"),
        entry.get("exception"),
        dumps_json(entry.get("metadata") or {}),
    )


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
_SEVERITY = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
# The windows of sql/0003 and 0004, a little narrower so that a row this side accepts
# is never one the database would have repaired.
_PAST, _FUTURE = 29 * 86400.0, 3000.0
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def direct_rows(
    entries: Sequence[dict[str, Any]], server_offset: float
) -> list[tuple[Any, ...]] | None:
    """The batch as system_logs rows, or None when any entry needs the database's repair
    rules (text too long, malformed task id, clock far from the server's, unknown level):
    those batches take the staged path, where the rules live. Values stay in the shapes
    the entries have (UUID text, integer microseconds, JSON text): the connection's
    dumpers (orchestrator.db.binary) write them as they are."""
    now = time.time() + server_offset
    low, high = now - _PAST, now + _FUTURE
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for e in entries:
        message, exception, task = e["message"], e.get("exception"), e.get("task_id")
        level = e["log_level"]
        at = e["timestamp"] + server_offset
        metadata = dumps_json(e.get("metadata") or {})
        if (
            len(message) > 32768
            or (exception is not None and len(exception) > 65536)
            or not low < at < high
            or level not in _SEVERITY
            or (task is not None and not _UUID_TEXT.fullmatch(task))
            or len(metadata) > 65536
        ):
            return None
        cycle = e.get("cycle_number")
        append((
            e["id"], epoch_microseconds(e["timestamp"]), e["source_type"][:64],
            e["source_id"][:255], level, _SEVERITY[level], e.get("logger_name"), message, task,
            e.get("worker_id"), cycle if type(cycle) is int and -(2**31) <= cycle < 2**31 else None,
            e.get("correlation_id"), exception, metadata,
        ))  # fmt: skip
    return rows


class PostgresSink:
    """Sends batches over one psycopg connection, reconnecting after failures.

    Pooler-safe (PgBouncer/Supavisor transaction mode): autocommit, one statement per
    batch, no prepared statements, no session state.
    """

    def __init__(self, conninfo: str, label: str = "PostgreSQL") -> None:
        self.conninfo = conninfo
        self.label = label
        self._conn: psycopg.Connection[Any] | None = None
        self._offset: float | None = None
        self._direct_allowed = True

    def _executor(self) -> PsycopgExecutor:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = connect(self.conninfo, connect_timeout=5)
            except DatabaseUnavailable as error:
                raise TransientSinkError(str(error)) from None
            register_copy_dumpers(self._conn)
        return PsycopgExecutor(self._conn)

    def send(self, entries: Sequence[dict[str, Any]]) -> InsertResult:
        """Direct COPY when the batch needs nothing from the database's repair rules,
        else (and after a unique violation: a retry of stored rows) the staged path."""
        conn = self._executor().conn
        try:
            if self._direct_allowed:
                rows = direct_rows(entries, self._server_offset(conn))
                if rows is not None and self._copy_direct(conn, rows):
                    return InsertResult(True, len(rows), 0)
            return self._send_staged(conn, entries)
        except (psycopg.OperationalError, psycopg.InterfaceError, *_TRANSIENT_SQLSTATES) as error:
            self._reset()
            raise TransientSinkError(one_line(error)) from None
        except (psycopg.DataError, psycopg.IntegrityError) as error:
            raise DataSinkError(one_line(error)) from None
        except psycopg.Error as error:
            self._reset()
            raise TransientSinkError(one_line(error)) from None

    def _copy_direct(self, conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> bool:
        """COPY straight into system_logs: the fastest path, and all-or-nothing. False
        when the rows must take the staged path instead."""
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
            return False  # a retry of stored rows, or a row the staged path must judge
        except (pg_errors.FeatureNotSupported, pg_errors.InsufficientPrivilege):
            self._direct_allowed = False  # RLS applies to this role: COPY is not allowed
            return False
        return True

    def _send_staged(
        self, conn: psycopg.Connection[Any], entries: Sequence[dict[str, Any]]
    ) -> InsertResult:
        """One transaction: stage by binary COPY, then INSERT ... ON CONFLICT (sql/0004)."""
        with conn.transaction():
            conn.execute("SELECT public.func_prepare_log_stage()")
            with conn.cursor().copy(STAGE_COPY) as copy:
                copy.set_types(STAGE_TYPES)
                for entry in entries:
                    copy.write_row(_stage_row(entry))
            row = conn.execute("SELECT public.func_insert_staged_logs()").fetchone()
        assert row is not None
        return calls.insert_logs_batch([]).decode(row[0])

    def _server_offset(self, conn: psycopg.Connection[Any]) -> float:
        """Server clock minus ours, measured once per connection."""
        if self._offset is None:
            row = conn.execute("SELECT extract(epoch FROM now())::float8").fetchone()
            assert row is not None
            self._offset = float(row[0]) - time.time()
        return self._offset

    def check(self) -> None:
        executor = self._executor()
        try:
            row = executor.conn.execute(
                "SELECT to_regprocedure('public.func_insert_staged_logs()') IS NOT NULL"
            ).fetchone()
        except psycopg.Error as error:
            self._reset()
            raise TransientSinkError(one_line(error)) from None
        if not row or not row[0]:
            raise TransientSinkError(
                "func_insert_staged_logs() does not exist: run `orchestrator migrate`"
            )

    def _reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to save
                self._conn.close()
            self._conn = None
            self._offset = None

    def close(self) -> None:
        self._reset()

    def abandon(self) -> None:
        abandoned.append(self._conn)
        self._conn = None
