"""What a database's refusal means for the hub, decided by SQLSTATE for every driver.

psycopg, asyncpg and PostgREST all report the server's SQLSTATE (PostgREST as ``code``),
so one table says which refusals are worth retrying, which are the input's fault and
which need the operator (see :mod:`orchestrator.errors`). The drivers only find the
SQLSTATE and the message; none of them decides on its own.
"""

from __future__ import annotations

from orchestrator.errors import CallRefused, DatabaseUnavailable, HubError, InputRefused

# 08 connection, 40 rollback (serialization failure, deadlock), 53 insufficient
# resources (too many connections), 57 operator intervention (shutdown, cancel).
_RETRY_CLASSES = ("08", "40", "53", "57")
_RETRY_CODES = frozenset({"55P03"})  # lock_not_available
# 22 data exception, 23 integrity constraint, P0001 a hub function's RAISE EXCEPTION.
_INPUT_CLASSES = ("22", "23")
_INPUT_CODES = frozenset({"P0001"})
# The function does not exist: PostgreSQL's undefined_function, PostgREST's PGRST202.
MISSING_FUNCTION = frozenset({"42883", "PGRST202"})


def is_retryable(sqlstate: str | None) -> bool:
    """True for the SQLSTATEs after which the same call may succeed later."""
    return sqlstate is not None and (sqlstate[:2] in _RETRY_CLASSES or sqlstate in _RETRY_CODES)


def is_input_refusal(sqlstate: str | None) -> bool:
    """True for the SQLSTATEs that blame the call's input (class 22 or 23, ``P0001``)."""
    return sqlstate is not None and (sqlstate[:2] in _INPUT_CLASSES or sqlstate in _INPUT_CODES)


def refusal(sqlstate: str | None, message: str, label: str) -> HubError:
    """The hub's error for a server refusal ``message`` with ``sqlstate`` from ``label``."""
    if is_retryable(sqlstate):
        return DatabaseUnavailable(f"{label} cannot take the call now: {message}")
    if is_input_refusal(sqlstate):
        return InputRefused(message, sqlstate=sqlstate)
    if sqlstate in MISSING_FUNCTION:
        return CallRefused(
            f"{label} lacks a hub function ({message}); run `orchestrator migrate`",
            sqlstate=sqlstate,
        )
    return CallRefused(f"{label} refused the call: {message}", sqlstate=sqlstate)
