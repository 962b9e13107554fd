"""``backup info`` without a file: the database at a glance (the seed's get_database_info)."""

from __future__ import annotations

from typing import Any

from orchestrator.db import migrate
from orchestrator.db.psycopg import connect


def database_info_at(url: str, label: str) -> dict[str, Any]:
    """``func_database_info()`` plus the schema state (applied migrations, up to date)."""
    with connect(url, label=label) as conn:
        state = migrate.status(conn)
        row = conn.execute("SELECT public.func_database_info()").fetchone()
    info: dict[str, Any] = dict(row[0]) if row else {}
    info["target"] = label
    info["migrations"] = [a.name for a in state.applied]
    info["schema_up_to_date"] = state.up_to_date
    info["schema_behind"] = None if state.up_to_date else state.behind()
    return info
