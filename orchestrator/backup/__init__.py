"""Backup and restore of the hub's PostgreSQL database (README "Backup and restore").

From Python, against the database the settings name (``DATABASE_URL``, else the
embedded server), as the seed's ``create_backup``/``restore_backup`` were::

    from orchestrator.backup import create_backup, list_backups, restore_backup
    path = create_backup()                 # a new hub-backup-<time>.tar in the backup dir
    report = restore_backup(path, force=True)

:func:`backup_database` and :func:`restore_database` take a URL instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import platformdirs

from orchestrator.backup.errors import BackupError
from orchestrator.backup.info import database_info_at
from orchestrator.backup.manifest import BackupInfo, read_manifest
from orchestrator.config import Settings, get_settings
from orchestrator.db.backup.create import backup_database, prune_backups
from orchestrator.db.backup.create import list_backups as list_backup_files
from orchestrator.db.backup.restore import RestoreReport, restore_database
from orchestrator.db.target import resolve_database

__all__ = [
    "BackupError",
    "BackupInfo",
    "RestoreReport",
    "backup_database",
    "backup_dir",
    "create_backup",
    "database_info",
    "database_info_at",
    "list_backups",
    "prune_backups",
    "read_manifest",
    "restore_backup",
    "restore_database",
]


def backup_dir(settings: Settings | None = None) -> Path:
    """``ORCHESTRATOR_BACKUP_DIR``, else ``<user data dir>/orchestrator-hub/backups``."""
    settings = settings or get_settings()
    return settings.backup_dir or Path(platformdirs.user_data_dir("orchestrator-hub")) / "backups"


def create_backup(path: Path | None = None, *, with_logs: bool = True) -> Path:
    """Backs up the configured database to ``path`` (default: a new file in
    :func:`backup_dir`) and returns the file."""
    settings = get_settings()
    with resolve_database(settings, sql=True) as target:
        info = backup_database(
            target.url,
            path,
            directory=backup_dir(settings),
            with_logs=with_logs,
            pg_dump=settings.pg_dump,
        )
    return info.path


def list_backups(directory: Path | None = None) -> list[BackupInfo]:
    """The backups in ``directory`` (default :func:`backup_dir`), newest first."""
    return list_backup_files(directory or backup_dir())


def restore_backup(path: Path, force: bool = False) -> RestoreReport:
    """Restores ``path`` into the configured database (``force``: over its data)."""
    settings = get_settings()
    with resolve_database(settings, sql=True) as target:
        return restore_database(target.url, Path(path), force=force, pg_dump=settings.pg_dump)


def database_info() -> dict[str, Any]:
    """Size, server version, tables and schema state of the configured database."""
    with resolve_database(get_settings(), sql=True) as target:
        return database_info_at(target.url, target.label)
