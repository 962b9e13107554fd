"""Errors that reach a user as one clear line instead of a traceback."""


class HubError(Exception):
    """A problem the user can fix (bad setting, unreachable database, bad input).

    The CLI prints ``str(error)`` on one line and exits non-zero; anything that is not a
    ``HubError`` is a bug in the hub and keeps its traceback.
    """


class ConfigError(HubError):
    """A setting has a value the hub cannot accept."""


class DatabaseUnavailable(HubError):
    """The database could not be reached or started."""


class MigrationError(HubError):
    """The migrations cannot be applied as they are (edited file, failed statement)."""


class QueryInputError(HubError):
    """A log query was given a value it cannot use (unknown level, malformed time, ...)."""
