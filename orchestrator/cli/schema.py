"""Commands that need the hub's schema check it first, so a fresh database gets one
clear line ("reachable, but the hub's schema is missing: run `orchestrator migrate`")
instead of "function does not exist".

The embedded default is migrated on the spot (it is the hub's own database, and the
demo's first run must just work); a configured database is never changed behind the
operator's back, and the check only reads, so it works for a login that may not migrate.
"""

from __future__ import annotations

from orchestrator.db import migrate
from orchestrator.db.psycopg import connect
from orchestrator.db.target import SqlTarget
from orchestrator.errors import MigrationError


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
