"""Errors that reach a user as one clear line instead of a traceback.

Every database driver (psycopg, asyncpg, supabase-py) turns its own exceptions into
these at the seam (:mod:`orchestrator.db`), so a caller decides what to do from the
kind alone, whichever driver ran the call:

* :class:`DatabaseUnavailable`: try again later (no answer, lost connection, a busy or
  restarting server, HTTP 408/429/5xx); ``retry_after`` is the server's hint;
* :class:`InputRefused`: the call's input is refused; the same input fails again
  (SQLSTATE class 22 or 23, ``P0001`` raised by a hub function, HTTP 413);
* :class:`CallRefused`: the database answered and refused the call itself (a hub
  function is missing, the role lacks a privilege, a wrong API key).
"""

from __future__ import annotations


class HubError(Exception):
    """A problem the user can fix (bad setting, unreachable database, bad input).

    The CLI prints ``str(error)`` on one line and exits non-zero; anything that is not a
    ``HubError`` is a bug in the hub and keeps its traceback.
    """


class UsageError(HubError):
    """A command-line flag has a value the command cannot use (checked before any
    database work): exit status 2, as for argparse's own usage errors."""


class ConfigError(HubError):
    """A setting has a value the hub cannot accept."""


class DatabaseUnavailable(HubError):
    """The database could not be reached or started, or asked to be called again later.

    ``retry_after`` is the server's hint in seconds (HTTP ``Retry-After``), else None.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MigrationError(HubError):
    """The migrations cannot be applied as they are (edited file, failed statement)."""


class CallRefused(HubError):
    """The database refused the call itself: a missing function, a missing privilege, a
    wrong key. Retrying the same call fails again until someone fixes the database.

    ``sqlstate`` is the SQLSTATE (or PostgREST code) when the server gave one.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class InputRefused(HubError):
    """The input of a call is refused, by the hub's own check or by the database: the
    same input fails again, other input may pass (a log batch can be split).

    ``sqlstate`` is the database's SQLSTATE when it refused, None for the hub's checks.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class QueryInputError(InputRefused):
    """A log query was given a value it cannot use (unknown level, malformed time, ...)."""


def first_line(error: BaseException) -> str:
    """The first non-blank line of an error's text, or its type name when it has none:
    drivers put context, hints and SQL on the lines after it."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
