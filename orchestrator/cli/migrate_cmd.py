"""``orchestrator migrate``: apply pending SQL migrations, or list them with ``--status``."""

from __future__ import annotations

import argparse
from typing import Any

from tabulate import tabulate

from orchestrator.config import get_settings
from orchestrator.db import migrate
from orchestrator.db.psycopg import connect
from orchestrator.db.target import sql_target


def register(commands: Any) -> None:
    """Adds the ``migrate`` subcommand."""
    parser = commands.add_parser(
        "migrate",
        help="apply the pending sql/ migrations (or list them with --status)",
        description="Applies the numbered files under sql/ that the database has not seen, "
        "in order, under a lock. Refuses to run when an applied file was edited.",
    )
    parser.add_argument("--status", action="store_true", help="list applied and pending files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs the subcommand."""
    settings = get_settings()
    with sql_target(settings) as target, connect(target.url) as conn:
        if args.status:
            return _print_status(migrate.status(conn), target.label)
        applied = migrate.migrate(conn)
    if applied:
        print(f"Applied {len(applied)} migration(s) to {target.label}:")
        for name in applied:
            print(f"  {name}")
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
            state = "applied (file not in this checkout)"
        rows.append((applied.name, state, f"{applied.applied_at:%Y-%m-%d %H:%M:%S %Z}"))
    rows.extend((f.name, "pending", "") for f in status.pending)
    print(f"Migrations of {label}:")
    print(tabulate(rows, headers=["file", "state", "applied at"]))
    return 1 if status.edited else 0
