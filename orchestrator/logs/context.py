"""What a log record carries besides its message: context fields, correlation id, cycle, task.

Fields and correlation ids live in :mod:`contextvars`, so they are right per thread and
per asyncio task and never swap a process-wide setting (SimpleTuner's ``LogContext``
changed a global; its correlation ids sat in ``threading.local`` and were lost across
``await``). The orchestrator's cycle number is process-wide on purpose: one control
loop numbers the cycles, and every record of the process during cycle N carries N,
whichever thread logs it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# Each value is an immutable mapping, replaced (never mutated) on entry, so a record may
# keep a reference to it without copying.
_fields: ContextVar[Mapping[str, Any]] = ContextVar("orchestrator_log_fields", default=_EMPTY)
_correlation_id: ContextVar[str | None] = ContextVar("orchestrator_correlation_id", default=None)
_task_id: ContextVar[str | None] = ContextVar("orchestrator_task_id", default=None)
_worker_id: ContextVar[str | None] = ContextVar("orchestrator_worker_id", default=None)


class _Cycle:
    """The process's current orchestrator cycle (a plain attribute: atomic to set and read)."""

    number: int | None = None


_cycle = _Cycle()


class LogContext:
    """Adds fields to every record logged inside the ``with`` (or ``async with``) block.

    Nested contexts merge, inner values winning; leaving a block restores the outer
    fields exactly. Correct across threads and asyncio tasks because it is built on
    :mod:`contextvars`: a task started inside the block inherits the fields, and a
    sibling task never sees them.
    """

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        self._tokens: list[Token[Mapping[str, Any]]] = []

    def __enter__(self) -> LogContext:
        merged = MappingProxyType({**_fields.get(), **self.fields})
        self._tokens.append(_fields.set(merged))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _fields.reset(self._tokens.pop())

    async def __aenter__(self) -> LogContext:
        return self.__enter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(kind, error, tb)


def current_fields() -> Mapping[str, Any]:
    """The fields of the innermost :class:`LogContext` (an immutable mapping)."""
    return _fields.get()


def get_correlation_id() -> str:
    """The current correlation id, generating (and keeping) one when there is none."""
    value = _correlation_id.get()
    if value is None:
        value = uuid.uuid4().hex
        _correlation_id.set(value)
    return value


def peek_correlation_id() -> str | None:
    """The current correlation id, or None; never generates one (the log hot path)."""
    return _correlation_id.get()


def set_correlation_id(value: str) -> None:
    """Uses ``value`` (e.g. an incoming ``X-Correlation-ID`` header) from here on."""
    _correlation_id.set(value)


def clear_correlation_id() -> None:
    """Forgets the correlation id, e.g. when a request completes."""
    _correlation_id.set(None)


def set_cycle_number(number: int | None) -> None:
    """Marks every record logged from now on, by any thread, as part of cycle ``number``."""
    _cycle.number = number


def get_cycle_number() -> int | None:
    """The current orchestrator cycle, or None outside the control loop."""
    return _cycle.number


def set_task_context(task_id: str | None, worker_id: str | None = None) -> None:
    """Tags the records of this thread or asyncio task with a task (and worker) id."""
    _task_id.set(task_id)
    if worker_id is not None:
        _worker_id.set(worker_id)


def clear_worker_id() -> None:
    """Forgets the worker id set by :func:`set_task_context` (tests, re-used threads)."""
    _worker_id.set(None)


def clear_task_context() -> None:
    """Ends the task tagging started by :func:`set_task_context` (the worker id stays)."""
    _task_id.set(None)


def task_context() -> tuple[str | None, str | None]:
    """The current (task_id, worker_id)."""
    return _task_id.get(), _worker_id.get()


# Bound getters for the logging hot path (one attribute lookup fewer per read).
get_fields = _fields.get
get_correlation = _correlation_id.get
get_task = _task_id.get
get_worker = _worker_id.get
