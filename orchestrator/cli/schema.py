"""Commands that need the job store check the schema first, so a fresh database gets
one clear line ("run `orchestrator migrate` first") instead of "function does not exist".

The embedded default is migrated on the spot (it is the hub's own database, and the
demo's first run must just work); a configured database is never changed behind the
operator's back.
"""

from __future__ import annotations

from orchestrator.db import migrate
from orchestrator.db.psycopg import connect
from orchestrator.db.target import SqlTarget
from orchestrator.errors import MigrationError


def prepare_schema(target: SqlTarget) -> list[str]:
    """Migrates the embedded server; refuses a configured database that lacks migrations.

    Returns the names of the migrations it applied (only the embedded server gets any).
    """
    with connect(target.url, label=target.label) as conn:
        if target.embedded is not None:
            return migrate.migrate(conn)
        pending = migrate.status(conn).pending
    if pending:
        raise MigrationError(
            f"{target.label} lacks {len(pending)} migration(s) (first: {pending[0].name}); "
            "run `orchestrator migrate` first"
        )
    return []
