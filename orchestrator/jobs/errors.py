"""Turns the job functions' refusals into :class:`~orchestrator.errors.HubError`.

The SQL functions refuse bad input with SQLSTATE class 22 (e.g. ``22023``
invalid_parameter_value: a negative priority, a malformed payload) and refused
operations with ``P0001`` (unknown job or user, an expired approval request, self-
approval). Their message is already the one clear line a user should see, whichever
driver ran the call (psycopg, asyncpg and PostgREST all expose ``sqlstate``/``code``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.errors import HubError


class JobError(HubError):
    """The job store refused a call; ``str()`` says what was wrong and what is accepted."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def is_refusal(sqlstate: str | None) -> bool:
    """True for the SQLSTATEs the job functions use to refuse a call."""
    return sqlstate is not None and (sqlstate.startswith("22") or sqlstate == "P0001")


def job_error_from(error: BaseException) -> JobError | None:
    """The :class:`JobError` for a driver's exception, or ``None`` if it is not a refusal."""
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "code", None)
    if not isinstance(sqlstate, str) or not is_refusal(sqlstate):
        return None
    diag = getattr(error, "diag", None)
    message = getattr(diag, "message_primary", None) or getattr(error, "message", None)
    return JobError(str(message or error).strip().splitlines()[0], sqlstate)


@contextmanager
def job_errors() -> Iterator[None]:
    """Re-raises the job functions' refusals as :class:`JobError` (no traceback in the CLI)."""
    try:
        yield
    except Exception as error:
        translated = job_error_from(error)
        if translated is None:
            raise
        raise translated from None
