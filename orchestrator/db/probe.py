"""The health probe of a SQL database: reachable, how fast, which server, schema current.

Run on a connection of its own (a fresh one each time, with a connect and statement
timeout), so a probe never waits behind the application's pool and an outage shows at
once: a stopped server refuses the connection, a hung one times out. Only reads
(``SELECT 1``, the server version, the runner's records through
:func:`orchestrator.db.migrate.status`), so it works as any hub login.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from orchestrator.db import migrate
from orchestrator.db.schema_files import SchemaFiles
from orchestrator.errors import HubError, first_line


@dataclass(frozen=True)
class DatabaseProbe:
    """What one probe found. ``error`` is set when the database could not be used;
    ``schema`` says how the schema compares with this package's files."""

    ok: bool
    latency_seconds: float | None
    server_version: str | None = None
    applied: int = 0
    schema_current: bool = False
    schema: str = ""
    error: str | None = None


def probe_database(url: str, files: SchemaFiles, *, timeout: float = 2.0) -> DatabaseProbe:
    """Connects, runs ``SELECT 1`` (timed) and reads the migration state; never raises
    for a database problem (it is the answer)."""
    started = time.perf_counter()
    options = f"-c statement_timeout={int(timeout * 1000)}"
    try:
        with psycopg.connect(
            url, connect_timeout=max(2, round(timeout)), autocommit=True, options=options
        ) as conn:
            conn.execute("SELECT 1").fetchone()
            latency = time.perf_counter() - started
            version = conn.info.parameter_status("server_version")
            state = migrate.status(conn, files)
    except (psycopg.Error, OSError) as error:
        return DatabaseProbe(False, None, error=first_line(error))
    except HubError as error:  # e.g. the login may not read the runner's records
        return DatabaseProbe(False, None, error=str(error))
    if state.edited:
        schema = f"applied file sql/{state.edited[0][1].name} was edited since"
    elif not state.up_to_date:
        schema = f"schema behind by {state.behind()}: run orchestrator migrate"
    else:
        schema = f"{len(state.applied)} migrations applied, none pending"
    return DatabaseProbe(
        True,
        latency,
        version,
        len(state.applied),
        state.up_to_date and not state.edited,
        schema,
    )
