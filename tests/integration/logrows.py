"""Helpers shared by the log-store tests: entries, and calls through the real driver."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Json

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.logs import calls


def entry(**overrides: Any) -> dict[str, Any]:
    """A valid worker log entry; keyword arguments replace or add keys (None removes)."""
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "log_level": "INFO",
        "source_type": "worker",
        "source_id": "gpu-1",
        "message": "hello",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def handler_entry(**overrides: Any) -> dict[str, Any]:
    """An entry as the log handler builds it (snapshot.to_entry): epoch-float time, every
    key present; keyword arguments replace keys."""
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "timestamp": time.time(),
        "source_type": "worker",
        "source_id": "gpu-1",
        "log_level": "INFO",
        "logger_name": "w",
        "message": "m",
        "task_id": None,
        "worker_id": "gpu-1",
        "cycle_number": None,
        "correlation_id": None,
        "exception": None,
        "metadata": {},
    }
    base.update(overrides)
    return base


def insert(conn: psycopg.Connection[Any], entries: list[Any]) -> calls.InsertResult:
    """Sends a batch through the same Call + executor the hub uses."""
    return PsycopgExecutor(conn).run(calls.insert_logs_batch(entries))


def insert_raw(conn: psycopg.Connection[Any], payload: Any) -> dict[str, Any]:
    """Calls the SQL function with an arbitrary jsonb payload (no client-side cleaning)."""
    row = conn.execute("SELECT func_insert_logs_batch(%s)", [Json(payload)]).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def rows(conn: psycopg.Connection[Any], where: str = "true") -> list[dict[str, Any]]:
    """All log rows matching a (trusted, test-written) condition, oldest first."""
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(f"SELECT * FROM system_logs WHERE {where} ORDER BY timestamp, id").fetchall()
