"""How the log handlers keep from logging into themselves, and how they complain.

A handler that ships through psycopg or httpx must not ship those drivers' own records
(a failing send that logs would log a failing send, forever), nor its own package's,
nor the embedded server's (``pgserver``: its start and stop lines are not the program's).
Its own trouble goes to stderr, at most one line per interval, never per record.
"""

from __future__ import annotations

import contextlib
import sys
import time

IGNORED_ROOTS = frozenset(
    {
        "psycopg",
        "asyncpg",
        "httpx",
        "httpcore",
        "urllib3",
        "postgrest",
        "supabase",
        "hpack",
        "h2",
        "pgserver",
    }
)
OWN_LOGGER = "orchestrator.logs"

# Logger name -> ignored? Logger names are few, so this stays small, and one dict
# lookup is the cheapest test on the logging hot path.
_ignored: dict[str, bool] = {}


def is_ignored_logger(name: str) -> bool:
    """True for records of the drivers' loggers and of this package's own."""
    ignored = _ignored.get(name)
    if ignored is None:
        ignored = _ignored[name] = name.partition(".")[0] in IGNORED_ROOTS or name.startswith(
            OWN_LOGGER
        )
    return ignored


class RateLimitedStderr:
    """One stderr line per ``interval`` seconds at most; the rest are counted."""

    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self._last = -interval
        self._suppressed = 0

    def say(self, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} similar message(s) suppressed)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        with contextlib.suppress(Exception):  # stderr closed at exit: nowhere left to say it
            print(f"orchestrator: {message}{suffix}", file=sys.stderr, flush=True)
