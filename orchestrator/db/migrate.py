"""Applies the schema (:mod:`orchestrator.db.schema_files`) to a database, or says how far
behind it is.

:func:`migrate` runs in ONE transaction under a transaction-scoped advisory lock: the
pending numbered files in order, then, when anything changed, every function file in
its order, then the functions and views no file defines any more (an old signature, a
removed function) are dropped. Either all of an upgrade lands or none of it; two
concurrent runs are safe (the second waits, then finds nothing to do); and it works
through transaction-mode poolers. :func:`status` only reads, so every command can check
the schema as a login that may not change it. :func:`print_sql` is the same upgrade as
one script, for the Supabase SQL editor or psql.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from orchestrator.db.schema_files import SchemaFiles, SqlFile, bookkeeping_sql, discover
from orchestrator.errors import MigrationError

# pg_advisory_xact_lock key: "orchestrator_hub.migrate" hashed once, fixed forever.
LOCK_KEY = 0x6F72_6368_6D69_6772


@dataclass(frozen=True)
class Applied:
    """A row of ``schema_migrations`` or ``schema_functions``."""

    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    """How the database's schema compares with the files of this checkout.

    ``pending``: numbered files not applied yet. ``edited``: applied numbered files whose
    text changed since (refused). ``missing``: applied files this checkout lacks (a newer
    hub migrated the database). ``superseded``: records of the 0.1 layout, replaced on the
    next migrate. ``functions_changed``: function files new or changed since last applied;
    ``functions_removed``: function files applied once that are gone.
    """

    applied: list[Applied]
    pending: list[SqlFile]
    edited: list[tuple[Applied, SqlFile]]
    missing: list[Applied]
    superseded: list[Applied] = field(default_factory=list)
    functions_applied: list[Applied] = field(default_factory=list)
    functions_changed: list[SqlFile] = field(default_factory=list)
    functions_removed: list[Applied] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        """True when :func:`migrate` would change nothing."""
        return not (
            self.pending or self.superseded or self.functions_changed or self.functions_removed
        )

    @property
    def empty(self) -> bool:
        """True when the database has none of the hub's schema (nothing recorded)."""
        return not (self.applied or self.superseded or self.functions_applied)

    def behind(self) -> str:
        """What :func:`migrate` would do, in a few words (for one-line messages)."""
        parts = []
        if self.pending or self.superseded:
            first = self.pending[0].name if self.pending else "the 0.1 layout"
            parts.append(f"{len(self.pending)} migration(s) (first: sql/{first})")
        if self.functions_changed or self.functions_removed:
            changed = len(self.functions_changed) + len(self.functions_removed)
            parts.append(f"{changed} changed function file(s)")
        return " and ".join(parts) or "nothing"


def _table_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
    return bool(row and row[0])


def _rows(conn: psycopg.Connection[Any], table: str) -> list[Applied]:
    if not _table_exists(conn, f"public.{table}"):
        return []
    try:
        rows = conn.execute(
            f"SELECT filename, checksum, applied_at FROM public.{table} ORDER BY filename"
        ).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        raise MigrationError(
            f"this login may not read public.{table}, so the schema version is unknown: "
            "run the hub as the role that migrated it or as a member of service_role"
        ) from None
    return [Applied(name, checksum, at) for name, checksum, at in rows]


def _compare(
    files: SchemaFiles, migrations: list[Applied], functions: list[Applied]
) -> MigrationStatus:
    superseded = [a for a in migrations if files.superseded.get(a.name) == a.checksum]
    current = [a for a in migrations if a not in superseded]
    by_name = {f.name: f for f in files.migrations}
    done = {a.name for a in current}
    recorded = {a.name: a.checksum for a in functions}
    present = {f.name for f in files.functions}
    return MigrationStatus(
        applied=current,
        pending=[f for f in files.migrations if f.name not in done],
        edited=[
            (a, by_name[a.name])
            for a in current
            if a.name in by_name and by_name[a.name].checksum != a.checksum
        ],
        missing=[a for a in current if a.name not in by_name],
        superseded=superseded,
        functions_applied=functions,
        functions_changed=[f for f in files.functions if recorded.get(f.name) != f.checksum],
        functions_removed=[a for a in functions if a.name not in present],
    )


def status(conn: psycopg.Connection[Any], files: SchemaFiles | None = None) -> MigrationStatus:
    """What is applied and what is not. Only reads: no DDL, no lock, any login."""
    files = discover() if files is None else files
    return _compare(files, _rows(conn, "schema_migrations"), _rows(conn, "schema_functions"))


def _refuse_edited(current: MigrationStatus) -> None:
    if not current.edited:
        return
    applied, file = current.edited[0]
    raise MigrationError(
        f"sql/{file.name} was edited after it was applied on "
        f"{applied.applied_at:%Y-%m-%d %H:%M} UTC (recorded checksum {applied.checksum[:12]}, "
        f"file now {file.checksum[:12]}); numbered migrations are forward-only: restore the "
        "file and put the change in a new numbered file (functions and views belong in "
        "sql/functions/, which is re-applied when it changes)"
    )


def _run_file(conn: psycopg.Connection[Any], file: SqlFile) -> int:
    started = time.perf_counter()
    try:
        conn.execute(file.text)  # trusted file, several statements
    except psycopg.Error as error:
        raise MigrationError(f"sql/{file.name} failed: {_with_context(error)}") from None
    return round((time.perf_counter() - started) * 1000)


def migrate(conn: psycopg.Connection[Any], files: SchemaFiles | None = None) -> list[str]:
    """Brings the schema up to date in one transaction; returns the files that were new
    or changed (numbered files, then function files), empty when it was current."""
    files = discover() if files is None else files
    if status(conn, files).up_to_date:
        return []  # no lock, no DDL: a login that may not migrate gets here too
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        try:
            conn.execute(bookkeeping_sql())  # trusted file, several statements
        except psycopg.errors.InsufficientPrivilege as error:
            raise MigrationError(
                f"this login may not change the schema ({_with_context(error)}): run "
                "`orchestrator migrate` as the role that owns the hub's tables"
            ) from None
        current = _compare(files, _rows(conn, "schema_migrations"), _rows(conn, "schema_functions"))
        _refuse_edited(current)
        if current.up_to_date:
            return []
        conn.execute(_forget_superseded_sql(files))
        for file in current.pending:
            duration = _run_file(conn, file)
            conn.execute(
                "INSERT INTO public.schema_migrations (filename, checksum, duration_ms) "
                "VALUES (%s, %s, %s)",
                [file.name, file.checksum, duration],
            )
        for file in files.functions:
            _run_file(conn, file)
        try:
            conn.execute(drop_stale_sql(files))
        except psycopg.Error as error:
            raise MigrationError(
                f"a function or view that no file defines any more could not be dropped: "
                f"{_with_context(error)}"
            ) from None
        conn.execute(record_functions_sql(files))
    return [f.name for f in current.pending] + [f.name for f in current.functions_changed]


def _forget_superseded_sql(files: SchemaFiles) -> str:
    pairs = ", ".join(
        f"({_literal(name)}, {_literal(checksum)})"
        for name, checksum in sorted(files.superseded.items())
    )
    if not pairs:
        return "SELECT 1"
    return f"DELETE FROM public.schema_migrations WHERE (filename, checksum) IN ({pairs});"


def drop_stale_sql(files: SchemaFiles) -> str:
    """Drops what the function files defined before and no longer define.

    Run after every function file was applied in this transaction: a function of a name
    the files define (now or at the last run, per ``schema_functions``) whose catalog row
    this transaction did not write is an old signature or a removed function. Views the
    files defined before and no longer do are dropped by name. Dependent objects stop it
    (no CASCADE), with PostgreSQL's message naming them.
    """
    functions = [n.split(" ", 1)[1] for n in files.function_names if n.startswith("function ")]
    views = [n.split(" ", 1)[1] for n in files.function_names if n.startswith("view ")]
    return f"""DO $stale$
DECLARE
    v_known text[] := ARRAY[{", ".join(_literal(n) for n in functions)}]::text[];
    v_views text[] := ARRAY[{", ".join(_literal(n) for n in views)}]::text[];
    v_before text[];
    v_sig regprocedure;
    v_view text;
BEGIN
    SELECT coalesce(array_agg(d), '{{}}') INTO v_before
      FROM public.schema_functions, unnest(defines) AS d;
    FOR v_sig IN
        SELECT p.oid::regprocedure
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE (n.nspname || '.' || p.proname = ANY (v_known)
                OR 'function ' || n.nspname || '.' || p.proname = ANY (v_before))
           AND p.xmin <> pg_current_xact_id()::xid
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_sig);
    END LOOP;
    FOR v_view IN
        SELECT substr(d, 6) FROM unnest(v_before) AS d
         WHERE d LIKE 'view %' AND NOT substr(d, 6) = ANY (v_views)
    LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s', v_view);
    END LOOP;
END;
$stale$;"""


def record_functions_sql(files: SchemaFiles) -> str:
    """Records the function files as applied (checksum and what each defines)."""
    rows = ",\n    ".join(
        f"({_literal(f.name)}, {_literal(f.checksum)}, "
        f"ARRAY[{', '.join(_literal(d) for d in f.defines)}]::text[])"
        for f in files.functions
    )
    names = ", ".join(_literal(f.name) for f in files.functions)
    return (
        f"DELETE FROM public.schema_functions WHERE filename NOT IN ({names});\n"
        "INSERT INTO public.schema_functions (filename, checksum, defines) VALUES\n"
        f"    {rows}\n"
        "ON CONFLICT (filename) DO UPDATE SET checksum = EXCLUDED.checksum, "
        "defines = EXCLUDED.defines, applied_at = now(), applied_by = current_user;"
    )


def print_sql(files: SchemaFiles | None = None) -> str:
    """The whole schema as one idempotent script: what :func:`migrate` does, for a paste
    into the Supabase SQL editor or ``psql -v ON_ERROR_STOP=1 -f``. It applies every file
    (each is idempotent) and records them, so a later ``orchestrator migrate`` agrees."""
    files = discover() if files is None else files
    parts = [
        "-- The orchestrator hub's schema: every file of sql/ in order, in one transaction.",
        "-- Generated by `orchestrator migrate --print-sql`; safe to run again.",
        "BEGIN;",
        f"SELECT pg_advisory_xact_lock({LOCK_KEY});",
        bookkeeping_sql().rstrip(),
        _forget_superseded_sql(files),
    ]
    for file in [*files.migrations, *files.functions]:
        parts.append(f"\n-- ==== sql/{file.name} ====\n{file.text.rstrip()}")
    records = ",\n    ".join(
        f"({_literal(f.name)}, {_literal(f.checksum)}, 0)" for f in files.migrations
    )
    parts += [
        "\n-- ==== bookkeeping ====",
        drop_stale_sql(files),
        "INSERT INTO public.schema_migrations (filename, checksum, duration_ms) VALUES\n"
        f"    {records}\nON CONFLICT (filename) DO NOTHING;",
        record_functions_sql(files),
        "COMMIT;",
    ]
    return "\n".join(parts) + "\n"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _with_context(error: psycopg.Error) -> str:
    """The server's message and the first line of its context: which statement of a
    file failed matters more here than in a one-line call error."""
    diag = error.diag
    where = f" ({diag.context.splitlines()[0]})" if diag.context else ""
    return f"{diag.message_primary or str(error).splitlines()[0]}{where}"
