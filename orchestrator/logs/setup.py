"""Turning database logging on from the settings, loudly when it cannot start.

The seed orchestrator's handler failed to start after a redeploy, swallowed the error,
and database logging went dark unnoticed. Here a start-up failure is either fatal
(``DB_LOGGING_REQUIRED=true``: :class:`~orchestrator.errors.DatabaseUnavailable`, one
line from the CLI) or one clear stderr line, with ``stats()["state"] == "down"`` and the
records buffered and retried until the database answers.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from orchestrator.config import Settings, get_settings
from orchestrator.db.executor import rest_credentials
from orchestrator.errors import DatabaseUnavailable
from orchestrator.logs.handler import (
    DatabaseLogHandler,
    SinkFactory,
    drain_before_later_exit_hooks,
)
from orchestrator.logs.sinks import TransientSinkError
from orchestrator.logs.sinks.postgres import PostgresSink
from orchestrator.logs.sinks.rest import RestSink


def sink_factory_from_settings(settings: Settings | None = None) -> SinkFactory:
    """A factory of the sink the settings name: DATABASE_URL, Supabase REST, or embedded."""
    settings = settings or get_settings()
    if settings.database_url:
        url = settings.database_url
        from orchestrator.db.target import describe_url

        label = describe_url(url)
        return lambda: PostgresSink(url, label)
    rest = rest_credentials(settings)
    if rest is not None:
        rest_url, key = rest
        return lambda: RestSink(rest_url, key)
    from orchestrator.db.embedded import start_embedded

    server = start_embedded(settings.embedded_data_dir)
    drain_before_later_exit_hooks()  # the server's own exit hook must run after our drain
    return lambda: PostgresSink(server.url, f"embedded PostgreSQL in {server.data_dir}")


def setup_db_logging(
    settings: Settings | None = None,
    *,
    sink: SinkFactory | None = None,
    source_type: str = "orchestrator_gpu",
    source_id: str | None = None,
    worker_id: str | None = None,
    logger: logging.Logger | None = None,
    handle_sigterm: bool = True,
) -> DatabaseLogHandler | None:
    """Attaches a :class:`DatabaseLogHandler` to ``logger`` (root) when ENABLE_DB_LOGGING.

    Checks the destination first. With ``DB_LOGGING_REQUIRED=true`` a failure raises
    :class:`DatabaseUnavailable`; otherwise the handler starts "down", says so on
    stderr once, and keeps retrying. With ``handle_sigterm`` (main thread, default
    SIGTERM disposition only) SIGTERM exits through ``atexit``, so the buffer drains.
    """
    settings = settings or get_settings()
    if not settings.enable_db_logging:
        return None
    factory = sink or sink_factory_from_settings(settings)
    if settings.db_logging_required:
        probe = factory()
        try:
            probe.check()
        except TransientSinkError as error:
            raise DatabaseUnavailable(
                f"database logging is required (DB_LOGGING_REQUIRED=true) but {probe.label} "
                f"is not usable: {error}"
            ) from None
        finally:
            probe.close()
    handler = DatabaseLogHandler(
        settings.db_log_level,
        sink=factory,
        source_type=source_type,
        source_id=source_id or settings.orchestrator_instance_id,
        worker_id=worker_id,
        batch_size=settings.db_log_batch_size,
        flush_interval=settings.db_log_flush_interval,
        capacity=settings.db_log_buffer_size,
    )
    target = logger or logging.getLogger()
    target.addHandler(handler)
    if target.level == logging.NOTSET or target.level > handler.level:
        target.setLevel(handler.level)
    if handle_sigterm:
        exit_on_sigterm()
    return handler


def exit_on_sigterm() -> bool:
    """Makes SIGTERM raise ``SystemExit(143)`` so ``atexit`` runs and buffers drain.

    Only from the main thread and only when SIGTERM still has its default action (a
    program with its own handler keeps it). Returns whether it installed the handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False

    def _exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    return True
