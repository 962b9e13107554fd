"""Structured logs: JSON or text lines, context fields, correlation ids across HTTP.

``configure_structured_logging()`` (or ``init_from_env()``) sets up the root logger;
``LogContext`` adds fields to every record in a block; ``get_client()`` and
``get_async_client()`` send the current correlation id to other services. The HTTP
names are imported on first use, so logging alone doesn't pay for importing httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.logs.context import (
    LogContext,
    clear_correlation_id,
    clear_task_context,
    clear_worker_id,
    current_fields,
    get_correlation_id,
    get_cycle_number,
    peek_correlation_id,
    set_correlation_id,
    set_cycle_number,
    set_task_context,
    task_context,
)
from orchestrator.logs.format import (
    LEVELS,
    JsonFormatter,
    TextFormatter,
    configure_structured_logging,
    get_logger,
    init_from_env,
    record_extra,
)

if TYPE_CHECKING:
    from orchestrator.logs.calls import HeartbeatResult, heartbeat_call
    from orchestrator.logs.http import CORRELATION_HEADER, get_async_client, get_client
    from orchestrator.logs.setup import DatabaseLogHandler, exit_on_sigterm, setup_db_logging
    from orchestrator.logs.worker import LogBuffer, WorkerDatabaseLogHandler, WorkerHeartbeat

# Names whose modules import httpx or psycopg: loaded on first use, so a process that
# only formats log lines does not pay for them.
_LAZY = {
    "CORRELATION_HEADER": "http",
    "get_async_client": "http",
    "get_client": "http",
    "DatabaseLogHandler": "setup",
    "setup_db_logging": "setup",
    "exit_on_sigterm": "setup",
    "LogBuffer": "worker",
    "WorkerDatabaseLogHandler": "worker",
    "WorkerHeartbeat": "worker",
    "HeartbeatResult": "calls",
    "heartbeat_call": "calls",
}


def __getattr__(name: str) -> Any:
    """Imports the HTTP helpers and the database handler only when asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"orchestrator.logs.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CORRELATION_HEADER",
    "LEVELS",
    "DatabaseLogHandler",
    "HeartbeatResult",
    "JsonFormatter",
    "LogBuffer",
    "LogContext",
    "TextFormatter",
    "WorkerDatabaseLogHandler",
    "WorkerHeartbeat",
    "clear_correlation_id",
    "clear_task_context",
    "clear_worker_id",
    "configure_structured_logging",
    "current_fields",
    "exit_on_sigterm",
    "get_async_client",
    "get_client",
    "get_correlation_id",
    "get_cycle_number",
    "get_logger",
    "heartbeat_call",
    "init_from_env",
    "peek_correlation_id",
    "record_extra",
    "set_correlation_id",
    "set_cycle_number",
    "set_task_context",
    "setup_db_logging",
    "task_context",
]
