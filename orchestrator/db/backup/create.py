"""Taking a backup: one snapshot for the dump and for the row counts of its manifest.

The seed copied a SQLite file. Here a REPEATABLE READ transaction exports its snapshot
(``pg_export_snapshot``), ``pg_dump --snapshot`` dumps the hub's tables in exactly that
snapshot, and the row counts of the manifest are taken in the same transaction while the
dump runs (the two cores share the work), so the manifest says precisely what the dump
holds, however many writers are busy meanwhile. Only ``ACCESS SHARE`` locks are taken:
the hub keeps running (retention that wants to drop a partition waits for the dump, as it
does for any long query).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tarfile
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from orchestrator import __version__
from orchestrator.backup.errors import BackupError
from orchestrator.backup.manifest import (
    DATA,
    FILE_PATTERN,
    FORMAT,
    LOG_TABLES,
    MANIFEST,
    BackupInfo,
    backup_name,
    hub_tables,
    info_of,
    read_manifest,
)
from orchestrator.db.backup.tools import find_tools, first_error, tool_env
from orchestrator.db.psycopg import connect
from orchestrator.db.schema_files import SchemaFiles, discover
from orchestrator.db.target import describe_url
from orchestrator.errors import HubError


def refuse_pooler(url: str, what: str) -> None:
    """Refuses a transaction pooler: pg_dump and the restore need a session of their own.

    Detected by the URL: PgBouncer's port 6432, Supavisor's transaction port 6543, or a
    ``pooler.`` host name (Supabase's ``*.pooler.supabase.com``). A pooler on another
    port is not detected; pg_dump then fails on the snapshot import with its own line.
    """
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return
    port, host = str(parts.get("port") or ""), str(parts.get("host") or "")
    if port in ("6432", "6543") or "pooler." in host:
        raise BackupError(
            f"{what} needs a direct session to PostgreSQL, but {describe_url(url)} is a "
            "connection pooler (PgBouncer/Supavisor): use the direct URL (Supabase: port "
            "5432 of db.<project>.supabase.co)"
        )


def server_major(conn: psycopg.Connection[Any]) -> int:
    """The server's major version (15, 16, ...)."""
    row = conn.execute("SHOW server_version_num").fetchone()
    return int(row[0]) // 10000 if row else 0


def dumped_tables(conn: psycopg.Connection[Any], tables: list[str]) -> tuple[list[str], list[str]]:
    """The tables that exist here, and every partition under them (dumped through
    their root, ``--load-via-partition-root``)."""
    present: list[str] = []
    partitions: list[str] = []
    for name in tables:
        row = conn.execute("SELECT to_regclass(%s)::oid", [name]).fetchone()
        if not row or row[0] is None:
            continue
        present.append(name)
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_partition_tree(%s) t "
            "JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.level > 0 ORDER BY 1",
            [name],
        ).fetchall()
        partitions.extend(r[0] for r in rows)
    return present, partitions


def count_rows(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, int]:
    """Exact row counts (a partitioned table counted through its root)."""
    counts: dict[str, int] = {}
    for name in tables:
        schema, table = name.split(".", 1)
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


def schema_version(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The applied migrations and function files, with checksums, as the snapshot sees."""
    migrations = conn.execute(
        "SELECT filename, checksum FROM public.schema_migrations ORDER BY filename"
    ).fetchall()
    functions = conn.execute(
        "SELECT filename, checksum FROM public.schema_functions ORDER BY filename"
    ).fetchall()
    return {
        "migrations": [{"name": n, "checksum": c} for n, c in migrations],
        "functions": [{"name": n, "checksum": c} for n, c in functions],
    }


def backup_database(
    url: str,
    path: Path | None = None,
    *,
    directory: Path | None = None,
    with_logs: bool = True,
    pg_dump: Path | None = None,
    files: SchemaFiles | None = None,
    audit_actor: str | None = None,
) -> BackupInfo:
    """Writes a backup of the hub at ``url`` to ``path`` (or a new
    ``hub-backup-<time>.tar`` in ``directory``) and returns what it holds. With
    ``audit_actor`` a ``backup_created`` event is appended (best effort: a login that may
    not append does not lose its backup); the admin API appends its own, with the
    request's context."""
    refuse_pooler(url, "a backup")
    files = files or discover()
    when = datetime.now(UTC)
    if path is None:
        if directory is None:
            raise BackupError("say where the backup goes: a directory or a file", status=400)
        path = directory / backup_name(when)
        if path.exists():
            path = directory / backup_name(when, precise=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise BackupError(f"{path} already exists; backups never overwrite a file")
    with (
        connect(url, label=describe_url(url)) as conn,
        tempfile.TemporaryDirectory(prefix=".hub-backup-", dir=path.parent) as work,
    ):
        major = server_major(conn)
        tools = find_tools(major, pg_dump)
        dump_file = Path(work) / DATA
        conn.autocommit = False
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
        snapshot, server_version = row.fetchone() or ("", "")
        if not conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0]:  # type: ignore[index]
            raise BackupError(f"{describe_url(url)} holds no hub schema: nothing to back up")
        wanted = [t for t in hub_tables(files) if with_logs or t not in LOG_TABLES]
        tables, partitions = dumped_tables(conn, wanted)
        conninfo, env = tool_env(url)
        args = [
            str(tools.pg_dump),
            f"--dbname={conninfo}",
            "--format=custom",
            "--data-only",
            "--load-via-partition-root",
            f"--snapshot={snapshot}",
            f"--file={dump_file}",
        ]
        for name in [*tables, *partitions]:
            schema, table = name.split(".", 1)
            args.append(f'--table="{schema}"."{table}"')
        started = time.monotonic()
        process = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            rows = count_rows(conn, tables)
            span = (
                conn.execute(
                    'SELECT min("timestamp"), max("timestamp") FROM public.system_logs'
                ).fetchone()
                if "public.system_logs" in tables
                else None
            )
            version = schema_version(conn)
        finally:
            _, stderr = process.communicate()
        conn.rollback()
        if process.returncode != 0:
            raise BackupError(f"pg_dump failed: {first_error(stderr)}", status=500)
        manifest = {
            "format": FORMAT,
            "hub_version": __version__,
            "created_at": when.isoformat(),
            "seconds": round(time.monotonic() - started, 3),
            "source": describe_url(url),
            "server_version": server_version,
            "pg_dump_version": tools.version,
            "with_logs": with_logs,
            "schema": version,
            "tables": tables,
            "partitions": partitions,
            "rows": rows,
            "oldest_log": span[0].isoformat() if span and span[0] else None,
            "newest_log": span[1].isoformat() if span and span[1] else None,
        }
        _write_tar(path, manifest, dump_file)
        info = info_of(path, manifest)
        if audit_actor is not None:
            _audit_created(conn, info, audit_actor)
    return info


def _audit_created(conn: psycopg.Connection[Any], info: BackupInfo, actor: str) -> None:
    details = json.dumps({"rows": sum(info.rows.values()), "size_bytes": info.size_bytes})
    try:
        conn.autocommit = True
        conn.execute(
            "SELECT public.func_audit_append('backup_created', 'create', %s, NULL, 'backup', "
            "%s, %s::jsonb)",
            [actor, info.path.name, details],
        )
    except psycopg.Error:
        pass  # the backup is written; the event is evidence, not a precondition


def _write_tar(path: Path, manifest: dict[str, Any], dump_file: Path) -> None:
    """The tar, written beside its final name and renamed into place (never half a file
    under the final name)."""
    data = json.dumps(manifest, indent=2, sort_keys=True).encode()
    fd, tmp = tempfile.mkstemp(prefix=".hub-backup-", suffix=".tar.partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w:") as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            import io

            tar.addfile(info, io.BytesIO(data))
            tar.add(dump_file, arcname=DATA)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def list_backups(directory: Path) -> list[BackupInfo]:
    """The backups in ``directory``, newest first (files that are not backups skipped)."""
    if not directory.is_dir():
        return []
    found: list[BackupInfo] = []
    for entry in directory.iterdir():
        if not FILE_PATTERN.match(entry.name):
            continue
        try:
            found.append(info_of(entry, read_manifest(entry)))
        except (HubError, KeyError, ValueError, OSError):
            continue
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def prune_backups(
    directory: Path, *, keep: int | None = None, keep_days: float | None = None
) -> list[Path]:
    """Deletes backups beyond the newest ``keep`` and those older than ``keep_days``
    days; the newest backup is always kept. Returns the deleted files."""
    backups = list_backups(directory)
    cutoff = datetime.now(UTC) - timedelta(days=keep_days) if keep_days is not None else None
    deleted: list[Path] = []
    for index, backup in enumerate(backups):
        if index == 0:
            continue
        too_many = keep is not None and index >= keep
        too_old = cutoff is not None and backup.created_at < cutoff
        if too_many or too_old:
            with contextlib.suppress(FileNotFoundError):
                backup.path.unlink()
            deleted.append(backup.path)
    return deleted
