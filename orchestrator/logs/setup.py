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
from typing import Any

from orchestrator.config import Settings, get_settings
from orchestrator.db.target import RestTarget, Target, resolve_database
from orchestrator.errors import DatabaseUnavailable, HubError
from orchestrator.logs.handler import SinkFactory, SinkLogHandler, drain_before_later_exit_hooks
from orchestrator.logs.sinks.postgres import PostgresSink
from orchestrator.logs.sinks.rest import RestSink


def sink_factory(target: Target) -> SinkFactory:
    """A factory of the sink for ``target``: direct PostgreSQL, or Supabase REST."""
    if isinstance(target, RestTarget):
        return lambda: RestSink(target.url, target.key)
    if target.embedded is not None:
        drain_before_later_exit_hooks()  # the server's own exit hook must run after our drain
    return lambda: PostgresSink(target.url, target.label)


def sink_factory_from_settings(settings: Settings | None = None) -> SinkFactory:
    """A factory of the sink the settings name (:func:`resolve_database`). An embedded
    server started here serves the handler for the rest of the process."""
    return sink_factory(resolve_database(settings or get_settings()))


class DatabaseLogHandler(SinkLogHandler):
    """:class:`~orchestrator.logs.handler.SinkLogHandler` with what its arguments leave
    unsaid taken from the settings: the sink (``DATABASE_URL``, Supabase, or the
    embedded server), ``source_id`` (``ORCHESTRATOR_INSTANCE_ID``), ``batch_size``,
    ``flush_interval``, ``capacity`` and ``max_bytes`` (``DB_LOG_*``). So it works from
    ``logging.config.dictConfig`` with no arguments but its level::

        {"class": "orchestrator.logs.DatabaseLogHandler", "level": "INFO",
         "source_type": "worker"}
    """

    def __init__(
        self,
        level: int | str = logging.INFO,
        *,
        sink: SinkFactory | None = None,
        source_type: str = "orchestrator_gpu",
        source_id: str | None = None,
        worker_id: str | None = None,
        batch_size: int | None = None,
        flush_interval: float | None = None,
        capacity: int | None = None,
        max_bytes: int | None = None,
        **tuning: Any,
    ) -> None:
        settings = get_settings()
        super().__init__(
            level,
            sink=sink or sink_factory_from_settings(settings),
            source_type=source_type,
            source_id=source_id or settings.orchestrator_instance_id,
            worker_id=worker_id,
            batch_size=batch_size or settings.db_log_batch_size,
            flush_interval=flush_interval or settings.db_log_flush_interval,
            capacity=capacity or settings.db_log_buffer_size,
            max_bytes=max_bytes or settings.db_log_buffer_bytes,
            **tuning,
        )


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
        except HubError as error:
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
        max_bytes=settings.db_log_buffer_bytes,
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
