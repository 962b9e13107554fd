"""One JSON object per line (for jq, Loki, Vector) or one readable line per record.

The JSON shape is the seed's: ``timestamp``, ``level``, ``logger``, ``message``,
``correlation_id``, ``source``, ``extra`` and, when there is one, ``exception``. ``extra``
holds the :class:`~orchestrator.logs.context.LogContext` fields and the record's own
``extra=`` keys, and never a LogRecord attribute (SimpleTuner leaked all of them).
Formatting never raises: a value JSON can't encode is written as its ``str()``.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from orchestrator.config import Settings, load_settings
from orchestrator.db.jsonsafe import json_safe, printable
from orchestrator.devnull import point_at_devnull
from orchestrator.logs.context import (
    current_fields,
    get_cycle_number,
    peek_correlation_id,
    task_context,
)

LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}

# Everything logging puts on a record itself; any other attribute came from ``extra=``.
_STANDARD_ATTRS: frozenset[str] = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}

# Marks the root handlers configure_structured_logging added, so only those are replaced.
_OWNED = "_orchestrator_structured_logging"
_configure_lock = threading.Lock()


def render_message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, or a description of the mistake when the args don't fit."""
    try:
        return record.getMessage()
    except Exception as error:
        return f"{record.msg!r} % {record.args!r} failed: {error!r}"


# Every line break str.splitlines() knows of and json.dumps(ensure_ascii=False) or a
# message may leave raw, escaped (as JSON escapes) so one record is one line for any reader.
_BREAKS = {
    **{code: f"\\u{code:04x}" for code in (0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
}
_BREAK_CHARS = tuple(map(chr, _BREAKS))


def _escape_line_breaks(text: str) -> str:
    """``text`` with its line breaks escaped; the scan first, as it is far cheaper."""
    for char in _BREAK_CHARS:
        if char in text:
            return text.translate(_BREAKS)
    return text


def _dumps(payload: dict[str, Any]) -> str:
    """One JSON line; the default separators keep the seed's grep recipe working."""
    try:
        line = json.dumps(payload, ensure_ascii=False, allow_nan=False, default=printable)
    except (TypeError, ValueError, RecursionError):
        line = json.dumps(json_safe(payload), ensure_ascii=False, allow_nan=False)
    return _escape_line_breaks(line)


def record_extra(record: logging.LogRecord) -> dict[str, Any]:
    """The keys a call passed with ``extra=``: every attribute logging itself didn't set.

    Depends on the record alone, so any thread may call it. Names starting with ``_``
    are left out: handlers keep their own bookkeeping on records under such names.
    """
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The line's ``extra``: cycle and task ids, LogContext fields, then ``extra=`` keys.

    Later sources win, so a field passed to one call beats the enclosing context. Reads
    the current context, so it is right when formatting on the thread (or task) that
    logged, as stream and file handlers do.
    """
    fields: dict[str, Any] = {}
    cycle = get_cycle_number()
    if cycle is not None:
        fields["cycle_number"] = cycle
    task_id, worker_id = task_context()
    if task_id is not None:
        fields["task_id"] = task_id
    if worker_id is not None:
        fields["worker_id"] = worker_id
    fields.update(current_fields())
    fields.update(record_extra(record))
    return fields


class _BaseFormatter(logging.Formatter):
    """What both formats share: UTC milliseconds, tracebacks, the optional ERROR stack."""

    def __init__(self, include_stack_info: bool = False) -> None:
        super().__init__()
        self.include_stack_info = include_stack_info

    def exception_text(self, record: logging.LogRecord) -> str | None:
        """The traceback, cached on the record like the stdlib does; None without one."""
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return record.exc_text or None

    def stack_text(self, record: logging.LogRecord) -> str | None:
        """The record's ``stack_info``, or for ERROR+ with no traceback the caller's stack."""
        if record.stack_info:
            return self.formatStack(record.stack_info)
        if not self.include_stack_info or record.levelno < logging.ERROR or record.exc_info:
            return None
        return _caller_stack(record)


def _caller_stack(record: logging.LogRecord) -> str | None:
    """The stack of the logging call, found while still on its thread; None elsewhere."""
    if record.thread != threading.get_ident():
        return None
    frame = inspect.currentframe()
    try:
        while frame is not None:
            code = frame.f_code
            if (code.co_filename, frame.f_lineno, code.co_name) == (
                record.pathname,
                record.lineno,
                record.funcName,
            ):
                lines = traceback.format_stack(frame)
                return "Stack (most recent call last):\n" + "".join(lines).rstrip("\n")
            frame = frame.f_back
        return None
    finally:
        del frame  # a frame referring to itself would wait for the cycle collector


class JsonFormatter(_BaseFormatter):
    """The seed's JSON log line, so ``jq 'select(.extra.job_id == "x")'`` finds a job."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": render_message(record),
            "correlation_id": peek_correlation_id(),
            "source": {"file": record.filename, "line": record.lineno, "function": record.funcName},
            "extra": _fields_of(record),
        }
        exception = self.exception_text(record)
        if exception:
            payload["exception"] = exception
        stack = self.stack_text(record)
        if stack:
            payload["stack_info"] = stack
        return _dumps(payload)


def _field(value: object) -> str:
    """``key=value`` text; quoted when a space or an empty value would make it ambiguous."""
    text = printable(value)
    if not text or any(c.isspace() for c in text):
        return _escape_line_breaks(json.dumps(text, ensure_ascii=False))
    return text


class TextFormatter(_BaseFormatter):
    """One line a person reads (UTC), fields and correlation id at the end; traceback below."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
        # Escaped line breaks: a message can't forge a second log line.
        message = _escape_line_breaks(render_message(record))
        line = f"{stamp}.{int(record.msecs):03d} {record.levelname:<5} {record.name}: {message}"
        fields = _fields_of(record)
        if fields:
            line += " [" + " ".join(f"{k}={_field(v)}" for k, v in fields.items()) + "]"
        cid = peek_correlation_id()
        if cid is not None:
            line += f" (cid={cid})"
        for block in (self.exception_text(record), self.stack_text(record)):
            if block:
                line += "\n" + block
        return line


def _level_number(level: str | int) -> int:
    """The numeric level of a name (any case) or number, else ValueError naming the choices."""
    if isinstance(level, int) and level in LEVELS.values():
        return level
    if isinstance(level, str) and level.strip().upper() in LEVELS:
        return LEVELS[level.strip().upper()]
    raise ValueError(f"invalid log level {level!r}: expected one of {', '.join(LEVELS)}")


def configure_structured_logging(
    level: str | int = "INFO",
    json_output: bool = True,
    log_file: str | os.PathLike[str] | None = None,
    include_stack_info: bool = False,
) -> None:
    """Points the root logger at stdout (and ``log_file``) in the chosen format.

    Safe to call again: it replaces only the handlers it added before, so a handler
    someone else attached to the root (the database handler, pytest's) stays.

    httpx logs every request at INFO: over Supabase REST that is a line per poll and per
    heartbeat, drowning the worker's own lines. Above DEBUG its loggers are held at
    WARNING, unless the application set their level itself.
    """
    number = _level_number(level)
    formatter: logging.Formatter = (
        JsonFormatter(include_stack_info) if json_output else TextFormatter(include_stack_info)
    )
    handlers: list[logging.Handler] = [_StdoutHandler(sys.stdout)]
    if log_file is not None:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        # the level on the handlers too: a database handler may lower the root's level
        # (the worker ships INFO to the database) without flooding the console
        handler.setLevel(number)
        setattr(handler, _OWNED, True)
    root = logging.getLogger()
    with _configure_lock:
        for old in [h for h in root.handlers if getattr(h, _OWNED, False)]:
            root.removeHandler(old)
            old.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(number)
        _quiet_request_lines(number)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The console handler: when stdout is a pipe its reader closed (``| head``), the
    process goes on (a worker's logs still reach the database) and its lines go to
    /dev/null, instead of a "--- Logging error ---" traceback per record."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if not isinstance(sys.exc_info()[1], BrokenPipeError):
            super().handleError(record)
            return
        if not point_at_devnull(self.stream):
            self.setStream(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


_REQUEST_LOGGERS = ("httpx",)
_QUIETED = "_orchestrator_quieted"


def _quiet_request_lines(level: int) -> None:
    """WARNING for the HTTP client's per-request lines above DEBUG; back to NOTSET at
    DEBUG. A level the application chose (not one we set) is left alone."""
    for name in _REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        ours = getattr(logger, _QUIETED, False)
        if logger.level != logging.NOTSET and not ours:
            continue
        quiet = level > logging.DEBUG
        logger.setLevel(logging.WARNING if quiet else logging.NOTSET)
        setattr(logger, _QUIETED, quiet)


def init_from_env(settings: Settings | None = None) -> None:
    """Configures logging from ORCHESTRATOR_LOG_LEVEL, _LOG_FORMAT and _LOG_FILE.

    Raises :class:`~orchestrator.errors.ConfigError` (one line) when one is invalid.
    """
    settings = settings if settings is not None else load_settings()
    configure_structured_logging(
        settings.log_level, settings.log_format == "json", settings.log_file
    )


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``; here because the seed's code imports it from here."""
    return logging.getLogger(name)
