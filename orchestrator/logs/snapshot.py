"""From a ``LogRecord`` to a ``system_logs`` entry, in two halves.

:func:`take_snapshot` runs on the calling thread and does only what cannot wait: render
the message (its arguments may change after the call returns), format the exception
(the traceback pins frames), and read the context variables (they belong to the
caller). No I/O, no JSON, no ids. :func:`to_entry` runs on the shipping thread and
builds the entry: id, time, columns, metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import uuid_utils

from orchestrator.db.jsonsafe import json_safe
from orchestrator.logs.context import (
    _cycle,
    get_correlation,
    get_fields,
    get_task,
    get_worker,
)
from orchestrator.logs.format import record_extra, render_message
from orchestrator.logs.guard import RateLimitedStderr, is_ignored_logger
from orchestrator.logs.levels import level_for_number

# (record, rendered message, exception text, context fields, correlation id, task id,
#  worker id, cycle): one flat tuple, because this is built on every logging call.
Snapshot = tuple[
    logging.LogRecord,
    str,
    str | None,
    Mapping[str, Any],
    str | None,
    str | None,
    str | None,
    int | None,
]

# Keys that have a column of their own instead of a place in metadata.
PROMOTED = ("task_id", "worker_id", "cycle_number")

_formatter = logging.Formatter()


def take_snapshot(record: logging.LogRecord) -> Snapshot:
    """Everything the record needs from the calling thread (the hot path: keep it lean)."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not fit the format: say so, keep the record
        message = render_message(record)
    exc_text = None
    if record.exc_info:
        exc_text = record.exc_text or _formatter.formatException(record.exc_info)
    return (
        record,
        message,
        exc_text,
        get_fields(),
        get_correlation(),
        get_task(),
        get_worker(),
        _cycle.number,
    )


def to_entry(
    snap: Snapshot, source_type: str, source_id: str, worker_id: str | None
) -> dict[str, Any]:
    """The ``func_insert_logs_batch`` entry for a snapshot (shipping thread)."""
    record, message, exc_text, fields, correlation_id, task_id, ctx_worker, cycle = snap
    extra = record_extra(record)
    metadata: dict[str, Any] = {**fields, **extra} if fields else extra
    promoted = {key: metadata.pop(key) for key in PROMOTED if key in metadata}
    entry: dict[str, Any] = {
        "id": str(uuid_utils.uuid7()),
        "timestamp": record.created,  # Unix epoch seconds: cheaper than an ISO string
        "log_level": level_for_number(record.levelno),
        "source_type": source_type,
        "source_id": source_id,
        "message": message,
        "logger_name": record.name,
        "task_id": _optional_text(promoted.get("task_id", task_id)),
        "worker_id": _optional_text(promoted.get("worker_id", ctx_worker or worker_id)),
        "cycle_number": promoted.get("cycle_number", cycle),
        "correlation_id": correlation_id,
        "exception": exc_text,
        "metadata": json_safe(metadata) if metadata else {},
    }
    for key in ("message", "exception"):
        if entry[key] is not None:
            entry[key] = json_safe(entry[key])
    return entry


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


class SnapshotHandler(logging.Handler):
    """The calling-thread half shared by both database handlers.

    ``handle`` skips the handler lock (appending to the buffer is thread-safe), and
    :meth:`snapshot` ignores the records that would feed back and never lets a broken
    record raise into the caller.
    """

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        super().__init__(level)
        self._complaints = RateLimitedStderr()

    def handle(self, record: logging.LogRecord) -> bool:
        """Filters and emits without the handler lock: emit is thread-safe by design."""
        if self.filters and not self.filter(record):
            return False
        self.emit(record)
        return True

    def snapshot(self, record: logging.LogRecord) -> Snapshot | None:
        """The record's snapshot, or None when it is ignored or cannot be taken."""
        if is_ignored_logger(record.name):
            return None
        try:
            return take_snapshot(record)
        except Exception as error:  # a broken __str__ in the caller's arguments
            self.count_drop("snapshot_error")
            self._complaints.say(f"could not snapshot a record of {record.name}: {error!r}")
            return None

    def count_drop(self, reason: str) -> None:
        """Counts a record this handler could not keep (subclasses own the counters)."""
        raise NotImplementedError
