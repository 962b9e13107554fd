"""``orchestrator backup create|list|restore|info``: consistent backups of the hub's
database, their retention, and restoring one (README "Backup and restore").

Cron: ``orchestrator backup create --dir /backup/orchestrator --keep-days 30``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

from orchestrator.backup import (
    backup_database,
    backup_dir,
    database_info_at,
    list_backups,
    prune_backups,
    read_manifest,
    restore_database,
)
from orchestrator.backup.manifest import info_of
from orchestrator.cli.argtypes import bounded
from orchestrator.config import get_settings
from orchestrator.db.target import resolve_database
from orchestrator.errors import UsageError


def register(commands: Any) -> None:
    """Adds the ``backup`` subcommand and its actions."""
    parser = commands.add_parser(
        "backup", help="back up the hub's database, list, inspect and restore backups"
    )
    sub = parser.add_subparsers(dest="backup_command", required=True, metavar="ACTION")

    create = sub.add_parser(
        "create",
        help="write a consistent backup (pg_dump in one snapshot, with a manifest)",
        description="Backs up the hub's tables of the configured database (DATABASE_URL, "
        "else the embedded server) online, in one snapshot, to hub-backup-<time>.tar.",
    )
    where = create.add_mutually_exclusive_group()
    where.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="directory of backups (default: ORCHESTRATOR_BACKUP_DIR or the user data dir)",
    )
    where.add_argument("--output", type=Path, metavar="FILE", help="write exactly this file")
    create.add_argument("--no-logs", action="store_true", help="leave the log rows out")
    create.add_argument(
        "--keep-days",
        type=bounded(float, 0, 36_500, "a number of days from 0 to 36500"),
        metavar="D",
        help="then delete backups in the directory older than D days (the newest stays)",
    )
    create.add_argument(
        "--keep",
        type=bounded(int, 1, 100_000, "a whole number from 1 to 100000"),
        metavar="N",
        help="then keep only the newest N backups in the directory",
    )
    create.set_defaults(run=_create)

    listing = sub.add_parser("list", help="the backups in the backup directory, newest first")
    listing.add_argument("--dir", type=Path, metavar="DIR")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(run=_list)

    info = sub.add_parser(
        "info", help="the database (size, tables, schema), or with FILE that backup's manifest"
    )
    info.add_argument("file", nargs="?", type=Path, metavar="FILE")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=_info)

    restore = sub.add_parser(
        "restore",
        help="restore a backup into the configured database",
        description="Loads FILE into the configured database in one transaction, rebuilds "
        "the derived tables and checks every row count against the manifest. Refused when "
        "the database holds hub data (unless --force) or a daemon holds a lease on it.",
    )
    restore.add_argument("file", type=Path, metavar="FILE")
    restore.add_argument(
        "--force", action="store_true", help="replace the data of a database that has some"
    )
    restore.add_argument("--yes", action="store_true", help="do not ask before --force")
    restore.set_defaults(run=_restore)


def _create(args: argparse.Namespace) -> int:
    settings = get_settings()
    directory = args.dir or (args.output.parent if args.output else backup_dir(settings))
    if args.output and (args.keep is not None or args.keep_days is not None):
        raise UsageError("--keep and --keep-days apply to a --dir of backups, not to --output")
    with resolve_database(settings, sql=True) as target:
        info = backup_database(
            target.url,
            args.output,
            directory=directory,
            with_logs=not args.no_logs,
            pg_dump=settings.pg_dump,
            audit_actor="orchestrator backup create",
        )
    print(
        f"Backed up {sum(info.rows.values()):,} rows of {len(info.rows)} tables to {info.path} "
        f"({info.size_bytes / 1e6:.1f} MB)"
    )
    if args.keep is not None or args.keep_days is not None:
        deleted = prune_backups(directory, keep=args.keep, keep_days=args.keep_days)
        for path in deleted:
            print(f"Deleted old backup {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    directory = args.dir or backup_dir()
    backups = list_backups(directory)
    if args.json:
        for backup in backups:
            print(json.dumps(backup.as_dict()))
        return 0
    if not backups:
        print(f"No backups in {directory}.")
        return 0
    rows = [
        (
            b.path.name,
            f"{b.created_at:%Y-%m-%d %H:%M:%S}Z",
            f"{b.size_bytes / 1e6:.1f} MB",
            f"{sum(b.rows.values()):,}",
            b.hub_version,
            "" if b.with_logs else "no logs",
        )
        for b in backups
    ]
    print(tabulate(rows, headers=["file", "created (UTC)", "size", "rows", "hub", ""]))
    return 0


def _info(args: argparse.Namespace) -> int:
    if args.file is not None:
        manifest = read_manifest(args.file)
        if args.json:
            print(json.dumps(manifest, indent=2))
            return 0
        backup = info_of(args.file, manifest)
        print(
            f"{args.file}: made {backup.created_at:%Y-%m-%d %H:%M:%S} UTC by hub "
            f"{backup.hub_version} from PostgreSQL {backup.server_version}"
        )
        print(
            f"logs from {manifest.get('oldest_log') or '-'} to {manifest.get('newest_log') or '-'}"
        )
        print(tabulate(sorted(backup.rows.items()), headers=["table", "rows"]))
        return 0
    with resolve_database(get_settings(), sql=True) as target:
        info = database_info_at(target.url, target.label)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(
        f"{info['target']}: PostgreSQL {info['server_version']}, "
        f"{int(info['size_bytes']) / 1e6:.1f} MB"
    )
    state = "up to date" if info["schema_up_to_date"] else f"behind by {info['schema_behind']}"
    print(f"schema: {len(info['migrations'])} migrations applied, {state}")
    print(
        tabulate(
            [
                (t["table"], f"{t['rows_estimate']:,}", f"{t['size_bytes'] / 1e6:.1f} MB")
                for t in info["tables"]
            ],
            headers=["table", "rows (estimate)", "size"],
        )
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    settings = get_settings()
    read_manifest(args.file)  # a bad file is refused before any database work
    if args.force and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("--force replaces the database's data: add --yes to confirm")
        answer = input("Replace the hub data of the configured database? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing restored.")
            return 1
    with resolve_database(settings, sql=True) as target:
        report = restore_database(target.url, args.file, force=args.force, pg_dump=settings.pg_dump)
    verb = "Replaced the data of" if report.replaced else "Restored into"
    print(
        f"{verb} {report.target}: {report.total_rows:,} rows, counts equal the manifest "
        f"({report.seconds:.1f} s)"
    )
    return 0
