"""Restoring a backup: checks first, then one transaction that loads, recounts and proves.

Refused, each with one line, before anything is changed: a backup made by a newer hub (a
migration this code does not know), a target migrated by a newer hub, a transaction
pooler, a target holding hub data (unless ``force``), a daemon holding a lease on the
target (unless ``force``). Then the target is migrated to this code's schema, given the
daily log partitions back to the oldest restored log, and loaded in ONE ``psql
--single-transaction`` run: the preamble empties the hub's tables (a restore over an
existing hub), ``pg_restore --data-only`` streams the rows (COPY fires the rollup
triggers, so the rollups are recounted from the rows as they arrive), and
``hub_internal.func_restore_finish`` recounts the job counters and concurrency slots and
compares every row count with the manifest. Any failure rolls all of it back: the target
is left as it was. A ``backup_restored`` audit event closes it (the restored chain
continues).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from orchestrator.backup.errors import BackupError
from orchestrator.backup.manifest import DATA, DERIVED, SEEDED, hub_tables, read_manifest
from orchestrator.db import migrate
from orchestrator.db.backup.create import refuse_pooler, server_major
from orchestrator.db.backup.tools import find_tools, first_error, tool_env
from orchestrator.db.psycopg import connect
from orchestrator.db.schema_files import SchemaFiles, discover
from orchestrator.db.target import describe_url


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did."""

    path: Path
    target: str
    rows: dict[str, int]
    seconds: float
    replaced: bool

    @property
    def total_rows(self) -> int:
        """Every restored row."""
        return sum(self.rows.values())


def check_schema(manifest: dict[str, Any], files: SchemaFiles, path: Path) -> None:
    """Refuses a backup whose schema this code does not know (made by a newer hub), and a
    manifest naming tables this code does not back up or counts that are not counts."""
    known = set(hub_tables(files))
    rows = manifest.get("rows")
    if not isinstance(rows, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in rows.values()
    ):
        raise BackupError(f"{path.name} has a manifest without row counts", status=400)
    ours = {f.name: f.checksum for f in files.migrations}
    for entry in manifest.get("schema", {}).get("migrations", []):
        name, checksum = str(entry.get("name")), str(entry.get("checksum"))
        if name not in ours or ours[name] != checksum:
            raise BackupError(
                f"{path.name} was made by a newer hub (hub {manifest.get('hub_version', '?')}, "
                f"schema file sql/{name} {'unknown to' if name not in ours else 'differs in'} "
                "this version): upgrade orchestrator-hub to restore it"
            )
    unknown = sorted(set(rows) - known)
    if unknown:
        raise BackupError(
            f"{path.name} holds table {unknown[0][:80]!r}, which this hub does not back up; "
            "refusing to load it",
            status=400,
        )


def _target_checks(
    conn: psycopg.Connection[Any], manifest: dict[str, Any], force: bool, label: str
) -> None:
    state = migrate.status(conn)
    if state.missing:
        raise BackupError(
            f"{label} was migrated by a newer hub (sql/{state.missing[0].name} is unknown "
            "to this version): restore with that hub's version"
        )
    if force:
        return
    if conn.execute("SELECT to_regclass('public.daemon_leases')").fetchone()[0]:  # type: ignore[index]
        held = conn.execute(
            "SELECT duty, holder FROM public.daemon_leases WHERE expires_at > now() "
            "ORDER BY duty LIMIT 1"
        ).fetchone()
        if held:
            raise BackupError(
                f"a daemon ({held[1]}) holds the {held[0]!r} lease on {label}: stop "
                "`orchestrator serve`/`run` there first, or pass --force"
            )
    table = _first_with_rows(conn, manifest["rows"])
    if table is not None:
        raise BackupError(
            f"{label} already holds hub data ({table} has rows): restore into a fresh "
            "database, or pass --force to replace its data"
        )


def _first_with_rows(conn: psycopg.Connection[Any], tables: list[str]) -> str | None:
    """The first of ``tables`` that exists and has a row, leaving out what the
    migrations fill themselves (:data:`SEEDED`); None when the hub holds no data."""
    for table in tables:
        if table in SEEDED:
            continue
        if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:  # type: ignore[index]
            continue
        schema, name = table.split(".", 1)
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{})").format(
            sql.Identifier(schema), sql.Identifier(name)
        )
        if conn.execute(query).fetchone()[0]:  # type: ignore[index]
            return table
    return None


def _preamble(manifest: dict[str, Any]) -> str:
    """Empties the hub's tables inside the load transaction (the audit log through its
    retention switch: its trigger refuses TRUNCATE)."""
    derived = [
        t
        for t in DERIVED
        # a backup without logs leaves the target's logs, and so their rollups, alone
        if "public.system_logs" in manifest["rows"] or not t.startswith("public.system_log")
    ]
    tables = [t for t in manifest["rows"] if t != "public.audit_log"] + derived
    idents = ", ".join(".".join(f'"{part}"' for part in table.split(".", 1)) for table in tables)
    lines = [
        "SET client_min_messages = warning;",
        f"TRUNCATE TABLE {idents};",
    ]
    if "public.audit_log" in manifest["rows"]:
        lines += [
            "SELECT set_config('orchestrator.audit_prune', 'on', true);",
            "DELETE FROM public.audit_log;",
            "SELECT set_config('orchestrator.audit_prune', 'off', true);",
        ]
    return "\n".join(lines) + "\n"


def _postamble(manifest: dict[str, Any]) -> str:
    counts = json.dumps({k: int(v) for k, v in manifest["rows"].items()})
    return (
        "SET search_path = pg_catalog, public;\n"
        f"SELECT hub_internal.func_restore_finish($json${counts}$json$::jsonb);\n"
    )


def _days_behind(manifest: dict[str, Any]) -> int:
    oldest = manifest.get("oldest_log")
    if not oldest:
        return 1
    days = (datetime.now(UTC) - datetime.fromisoformat(oldest)).days + 1
    return max(1, min(days, 366))


def restore_database(
    url: str,
    path: Path,
    *,
    force: bool = False,
    pg_dump: Path | None = None,
    files: SchemaFiles | None = None,
) -> RestoreReport:
    """Restores the backup file ``path`` into the database at ``url`` (see the module
    docstring for what is refused and what happens)."""
    manifest = read_manifest(path)
    files = files or discover()
    check_schema(manifest, files, path)
    refuse_pooler(url, "a restore")
    label = describe_url(url)
    started = time.monotonic()
    with connect(url, label=label) as conn:
        dump_major = int(str(manifest.get("pg_dump_version", "0")).split(".")[0] or 0)
        tools = find_tools(max(server_major(conn), dump_major), pg_dump)
        _target_checks(conn, manifest, force, label)
        migrate.migrate(conn, files)
        replaced = _first_with_rows(conn, list(manifest["rows"])) is not None
        if "public.system_logs" in manifest["rows"]:
            conn.execute(
                "SELECT public.func_maintain_log_partitions(3, %s)", [_days_behind(manifest)]
            )
    with tempfile.TemporaryDirectory(prefix=".hub-restore-", dir=path.parent) as work:
        work_dir = Path(work)
        with tarfile.open(path, "r:") as tar:
            source = tar.extractfile(DATA)
            if source is None:
                raise BackupError(f"{path} has no data.dump", status=400)
            with (work_dir / DATA).open("wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
        (work_dir / "pre.sql").write_text(_preamble(manifest))
        (work_dir / "post.sql").write_text(_postamble(manifest))
        _load(tools, url, work_dir)
    with connect(url, label=label) as conn:
        conn.execute("ANALYZE")
        conn.execute(
            "SELECT public.func_audit_append('backup_restored', 'restore', %s, NULL, "
            "'backup', %s, %s::jsonb)",
            [
                "orchestrator backup restore",
                path.name,
                json.dumps(
                    {
                        "created_at": manifest["created_at"],
                        "hub_version": manifest.get("hub_version"),
                        "rows": sum(int(v) for v in manifest["rows"].values()),
                        "replaced": replaced,
                    }
                ),
            ],
        )
    rows = {k: int(v) for k, v in manifest["rows"].items()}
    return RestoreReport(path, label, rows, round(time.monotonic() - started, 3), replaced)


def _load(tools: Any, url: str, work: Path) -> None:
    """``pg_restore -f -`` piped into ``psql --single-transaction`` between the preamble
    and the postamble: one transaction, all or nothing."""
    conninfo, env = tool_env(url)
    restore = subprocess.Popen(
        [str(tools.pg_restore), "--data-only", "--file=-", str(work / DATA)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert restore.stdout is not None
    psql = subprocess.Popen(
        [
            str(tools.psql),
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "--set=ON_ERROR_STOP=1",
            f"--dbname={conninfo}",
            f"--file={work / 'pre.sql'}",
            "--file=-",
            f"--file={work / 'post.sql'}",
        ],
        env=env,
        stdin=restore.stdout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    restore.stdout.close()  # psql owns the read end now
    _, psql_err = psql.communicate()
    restore_err = restore.stderr.read() if restore.stderr else b""
    restore.wait()
    if psql.returncode != 0:
        raise BackupError(
            f"the restore was rolled back: {first_error(psql_err.decode(errors='replace'))}",
            status=500,
        )
    if restore.returncode != 0:
        raise BackupError(
            f"pg_restore failed: {first_error(restore_err.decode(errors='replace'))}",
            status=500,
        )
