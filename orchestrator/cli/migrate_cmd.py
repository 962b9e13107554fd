"""``orchestrator migrate``: bring the schema up to date, show how far behind it is
(``--status``, read-only), or print it as one script for the SQL editor (``--print-sql``)."""

from __future__ import annotations

import argparse
from typing import Any

from tabulate import tabulate

from orchestrator.config import get_settings
from orchestrator.db import migrate
from orchestrator.db.psycopg import connect
from orchestrator.db.target import resolve_database


def register(commands: Any) -> None:
    """Adds the ``migrate`` subcommand."""
    parser = commands.add_parser(
        "migrate",
        help="bring the schema up to date (--status: show; --print-sql: one script)",
        description="Applies the numbered files of sql/migrations the database has not seen, "
        "in order, then the function files of sql/functions when any changed, in one "
        "transaction under a lock. Refuses to run when an applied numbered file was edited.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--status",
        action="store_true",
        help="list applied and pending files and changed function files (changes nothing; "
        "exit 1 when an applied file was edited)",
    )
    mode.add_argument(
        "--print-sql",
        action="store_true",
        help="print the whole schema as one idempotent script for the Supabase SQL editor "
        "or psql (needs no database)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs the subcommand."""
    if args.print_sql:
        print(migrate.print_sql(), end="")
        return 0
    settings = get_settings()
    with (
        resolve_database(settings, sql=True) as target,
        connect(target.url, label=target.label) as conn,
    ):
        if args.status:
            return _print_status(migrate.status(conn), target.label)
        applied = migrate.migrate(conn)
    if applied:
        print(f"Applied {len(applied)} file(s) to {target.label}:")
        for name in applied:
            print(f"  sql/{name}")
    else:
        print(f"Nothing to apply: {target.label} is up to date.")
    return 0


def _print_status(status: migrate.MigrationStatus, label: str) -> int:
    rows: list[tuple[str, str, str]] = []
    edited = {applied.name for applied, _ in status.edited}
    missing = {m.name for m in status.missing}
    for applied in status.applied:
        state = "EDITED since applied" if applied.name in edited else "applied"
        if applied.name in missing:
            state = "applied (file not in this checkout: a newer hub migrated it)"
        rows.append((applied.name, state, f"{applied.applied_at:%Y-%m-%d %H:%M:%S %Z}"))
    rows.extend((s.name, "0.1 layout: replaced by the next migrate", "") for s in status.superseded)
    rows.extend((f.name, "pending", "") for f in status.pending)
    changed = {f.name for f in status.functions_changed}
    recorded = {a.name: a for a in status.functions_applied}
    for name in sorted(changed | set(recorded)):
        applied_at = recorded[name].applied_at if name in recorded else None
        if name in changed:
            state = "changed since applied" if applied_at else "not applied"
        elif name in {r.name for r in status.functions_removed}:
            state = "applied (file removed: dropped by the next migrate)"
        else:
            state = "applied"
        rows.append((name, state, f"{applied_at:%Y-%m-%d %H:%M:%S %Z}" if applied_at else ""))
    print(f"Schema of {label}:")
    print(tabulate(rows, headers=["file under sql/", "state", "applied at"]))
    if not status.up_to_date:
        print(f"Behind by {status.behind()}: run `orchestrator migrate`.")
    return 1 if status.edited else 0
