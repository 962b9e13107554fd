"""From a ``LogRecord`` to a ``system_logs`` entry, in two halves.

:func:`take_snapshot` runs on the calling thread and does only what cannot wait: render
the message (its arguments may change after the call returns), capture the exception
as a :class:`traceback.TracebackException` without reading source lines (cheap; the
text is formatted on the shipping thread, and no frame or local variable stays alive
while the record waits out an outage), and read the context variables (they belong to
the caller). The snapshot keeps none of the ``LogRecord``'s own objects but the
``extra=`` values. No I/O, no JSON, no ids. :func:`to_entry` runs on the shipping thread
and builds the entry: id, time, columns, bounded metadata.

Sizes follow the database's limits (``sql/functions/logs/ingest.sql``): the message is
cut to 32 KiB here already (a 2 MB message must not wait in memory as 2 MB), the
exception to 64 KiB and the metadata to 64 KiB when the entry is built, each cut noted
under ``metadata._ingest`` with the keys the database uses.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

import uuid_utils

from orchestrator.db.jsonsafe import bounded_json, printable, safe_text
from orchestrator.logs.context import (
    _cycle,
    get_correlation,
    get_fields,
    get_task,
    get_worker,
)
from orchestrator.logs.format import _STANDARD_ATTRS, render_message
from orchestrator.logs.guard import RateLimitedStderr, is_ignored_logger
from orchestrator.logs.levels import level_for_number

MESSAGE_MAX, EXCEPTION_MAX, METADATA_MAX = 32768, 65536, 65536

# The bytes a record is counted for in the buffer beyond its message: the tuple, the
# entry it becomes, and an exception's stack summary (its text is not known yet).
RECORD_OVERHEAD, EXCEPTION_ESTIMATE = 512, 4096

# (levelno, created, logger name, message, message length before the cut or None,
#  exception (text, TracebackException or None), extra= values or None, context
#  fields, correlation id, task id, worker id, cycle): one flat tuple, because this is
#  built on every logging call.
Snapshot = tuple[
    int,
    float,
    str,
    str,
    int | None,
    "str | traceback.TracebackException | None",
    dict[str, Any] | None,
    Mapping[str, Any],
    str | None,
    str | None,
    str | None,
    int | None,
]

# A record without extra= keys has exactly this many attributes (fewer, without
# taskName before Python 3.12): one len() tells whether to look for extras at all.
_PLAIN_ATTRS = len(logging.LogRecord("", 0, "", 0, "", (), None).__dict__)


def take_snapshot(record: logging.LogRecord) -> tuple[Snapshot, int]:
    """(snapshot, estimated bytes): everything the record needs from the calling
    thread (the hot path: keep it lean)."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not fit the format: say so, keep the record
        message = render_message(record)
    size = RECORD_OVERHEAD + len(message)
    cut_from = None
    if size > MESSAGE_MAX:
        cut_from, message = len(message), message[:MESSAGE_MAX]
        size = RECORD_OVERHEAD + MESSAGE_MAX
    exc: str | traceback.TracebackException | None = None
    exc_info = record.exc_info
    if exc_info and exc_info[0] is not None:
        if record.exc_text:  # another handler formatted it already
            exc = record.exc_text[:EXCEPTION_MAX]
            size += len(exc)
        else:
            exc = traceback.TracebackException(
                exc_info[0], exc_info[1], exc_info[2], lookup_lines=False, compact=True
            )
            size += EXCEPTION_ESTIMATE
    extra = None
    attrs = record.__dict__
    if len(attrs) > _PLAIN_ATTRS:
        extra = {k: v for k, v in attrs.items() if k not in _STANDARD_ATTRS and k[0] != "_"}
        for value in extra.values():
            size += len(value) if type(value) is str else 64
    snap = (
        record.levelno,
        record.created,
        record.name,
        message,
        cut_from,
        exc,
        extra,
        get_fields(),
        get_correlation(),
        get_task(),
        get_worker(),
        _cycle.number,
    )
    return snap, size


def exception_text(exc: str | traceback.TracebackException) -> str:
    """The traceback as ``logging.Formatter.formatException`` writes it (no newline at
    the end); source lines are read now, on the shipping thread."""
    if isinstance(exc, str):
        return exc
    try:
        text = "".join(exc.format())
    except Exception:  # a broken __notes__ or the like: keep what is surely there
        text = f"{exc.exc_type.__name__ if exc.exc_type else 'Exception'}: {exc}"
    return text[:-1] if text.endswith("\n") else text


_LEVEL_NAMES = {n: level_for_number(n) for n in (10, 20, 30, 40, 50)}


def to_entry(
    snap: Snapshot, source_type: str, source_id: str, worker_id: str | None
) -> dict[str, Any]:
    """The ``func_insert_logs_batch`` entry for a snapshot (shipping thread). Raises
    only on a bug: whatever the values hold is encoded, bounded and noted."""
    (levelno, created, name, message, cut_from, exc, extra, fields, correlation_id,
     task_id, ctx_worker, cycle) = snap  # fmt: skip
    safe: Any = {}
    exception = None
    if extra or fields or exc is not None or cut_from is not None:  # else the common case
        metadata: dict[str, Any] = (
            {**fields, **extra} if fields and extra else dict(extra or fields)
        )
        if "task_id" in metadata:
            task_id = metadata.pop("task_id")
        if "worker_id" in metadata:
            ctx_worker = metadata.pop("worker_id")
        if "cycle_number" in metadata:
            cycle = metadata.pop("cycle_number")
        notes: dict[str, int] = {}
        if cut_from is not None:
            notes["message_truncated_from"] = cut_from
        if exc is not None:
            exception = exception_text(exc)
            if len(exception) > EXCEPTION_MAX:
                notes["exception_truncated_from"] = len(exception)
                exception = exception[:EXCEPTION_MAX]
            exception = safe_text(exception)
        if metadata:
            safe, cut = bounded_json(metadata, METADATA_MAX)
            if cut:
                safe = {}
                notes["metadata_dropped_bytes"] = METADATA_MAX + 1
        if notes:
            safe["_ingest"] = notes
    if "\x00" in message or not message.isascii():
        message = safe_text(message)
    return {
        "id": str(uuid_utils.uuid7()),
        "timestamp": created,  # Unix epoch seconds: cheaper than an ISO string
        "log_level": _LEVEL_NAMES.get(levelno) or level_for_number(levelno),
        "source_type": source_type,
        "source_id": source_id,
        "message": message,
        "logger_name": name if name.isascii() and "\x00" not in name else safe_text(name),
        "task_id": None if task_id is None else _optional_text(task_id),
        "worker_id": _optional_text(ctx_worker or worker_id),
        "cycle_number": cycle if cycle is None or type(cycle) is int else _optional_text(cycle),
        "correlation_id": None if correlation_id is None else _optional_text(correlation_id),
        "exception": exception,
        "metadata": safe,
    }


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    return safe_text(value if type(value) is str else printable(value)[:1024])


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

    def snapshot(self, record: logging.LogRecord) -> tuple[Snapshot, int] | None:
        """The record's (snapshot, size), or None when it is ignored or cannot be taken."""
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
