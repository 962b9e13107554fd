"""Commands that need the hub's schema check it first, so a fresh database gets one
clear line ("reachable, but the hub's schema is missing: run `orchestrator migrate`")
instead of "function does not exist".

The embedded default is migrated on the spot (it is the hub's own database, and the
demo's first run must just work); a configured database is never changed behind the
operator's back, and the check only reads, so it works for a login that may not migrate.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from orchestrator.config import Settings
from orchestrator.db import migrate
from orchestrator.db.calls import CallExecutor
from orchestrator.db.executor import open_executor
from orchestrator.db.psycopg import connect
from orchestrator.db.target import SqlTarget, Target, resolve_database
from orchestrator.errors import DatabaseUnavailable, MigrationError
from orchestrator.logs.setup import setup_db_logging
from orchestrator.logs.sinks.postgres import PostgresSink


def prepare_schema(target: SqlTarget) -> list[str]:
    """Migrates the embedded server; refuses a configured database that is behind.

    Returns the names of the files it applied (only the embedded server gets any).
    """
    with connect(target.url, label=target.label) as conn:
        if target.embedded is not None:
            return migrate.migrate(conn)
        current = migrate.status(conn)
    if current.empty:
        raise MigrationError(
            f"{target.label} is reachable, but the hub's schema is missing: "
            "run `orchestrator migrate`"
        )
    if not current.up_to_date:
        raise MigrationError(
            f"{target.label} is reachable, but the hub's schema is behind by "
            f"{current.behind()}: run `orchestrator migrate`"
        )
    return []


@contextlib.contextmanager
def prepared_database(settings: Settings, logger: logging.Logger) -> Iterator[SqlTarget]:
    """For the long-running commands (``run``, ``serve``): the SQL database, its schema
    prepared as above, and database logging to it (``ENABLE_DB_LOGGING``) until the block
    ends, when the handler is flushed (10 s at most) and closed."""
    with resolve_database(settings, sql=True) as target:
        applied = prepare_schema(target)
        if applied:
            logger.info("Applied %d migration(s) to %s", len(applied), target.label)
        url, label = target.url, target.label
        handler = setup_db_logging(
            settings, sink=lambda: PostgresSink(url, label), handle_sigterm=False
        )
        try:
            yield target
        finally:
            if handler is not None:
                handler.flush(10)
                logging.getLogger().removeHandler(handler)
                handler.close()


def check_target(target: Target) -> None:
    """:func:`prepare_schema` for a SQL target; Supabase REST cannot be asked for its
    migrations, and a missing function there is reported by the call that needs it."""
    if isinstance(target, SqlTarget):
        prepare_schema(target)


def check_target_if_reachable(target: Target) -> None:
    """:func:`check_target`, except that a database that cannot be reached now is left
    for the caller's retries (a live view waits for it instead of exiting)."""
    with contextlib.suppress(DatabaseUnavailable):
        check_target(target)


@contextlib.contextmanager
def open_checked_executor(settings: Settings, *, wait: bool = False) -> Iterator[CallExecutor]:
    """``open_executor`` after the schema check every command makes: the embedded
    server migrated, a configured database without the schema refused in one line.
    ``wait``: a database that is down at start is not refused (see above)."""
    prepare = check_target_if_reachable if wait else check_target
    with open_executor(settings, prepare=prepare) as executor:
        yield executor
