"""Turns the job functions' refusals into :class:`JobError`.

The SQL functions refuse bad input with SQLSTATE class 22 (e.g. ``22023``
invalid_parameter_value: a negative priority, a malformed payload) and refused
operations with ``P0001`` (unknown job or user, an expired approval request, self-
approval). Every executor already raises those as
:class:`~orchestrator.errors.InputRefused` with the function's own one-line message;
:func:`job_errors` names them :class:`JobError` for the job store's callers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.db.failures import is_input_refusal
from orchestrator.errors import InputRefused, first_line


class JobError(InputRefused):
    """The job store refused a call; ``str()`` says what was wrong and what is accepted."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message, sqlstate=sqlstate)


def job_error_from(error: BaseException) -> JobError | None:
    """The :class:`JobError` for a refusal (anything carrying a refusal's SQLSTATE), or
    ``None`` if it is not one."""
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "code", None)
    if not isinstance(sqlstate, str) or not is_input_refusal(sqlstate):
        return None
    return error if isinstance(error, JobError) else JobError(first_line(error), sqlstate)


@contextmanager
def job_errors() -> Iterator[None]:
    """Re-raises the job functions' refusals as :class:`JobError` (no traceback in the CLI)."""
    try:
        yield
    except Exception as error:
        translated = job_error_from(error)
        if translated is None or translated is error:
            raise
        raise translated from None
