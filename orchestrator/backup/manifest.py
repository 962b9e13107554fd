"""What a backup holds: the hub's tables, and the manifest that describes a backup file.

A backup file ``hub-backup-YYYYmmddTHHMMSSZ.tar`` holds ``manifest.json`` first (so
``backup list`` reads a few kilobytes, never the dump) and ``data.dump``
(``pg_dump -Fc --data-only``). The manifest carries the row count of every table taken in
the dump's own snapshot, so a restore can prove it loaded exactly what was saved.

The tables are those the numbered migrations create in the hub's schemas (found in the
files, so a migration added later is backed up with no change here), with their
partitions, minus what is derived or runtime state: rebuilt on restore, never trusted.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.backup.errors import BackupError
from orchestrator.db.schema_files import SchemaFiles

FORMAT = 1
MANIFEST = "manifest.json"
DATA = "data.dump"
FILE_PATTERN = re.compile(r"^hub-backup-(\d{8}T\d{6}(?:\d{6})?Z)\.tar$")
SCHEMAS = ("public", "hub_internal")

# Derived (recomputed from the rows as they load) or runtime (this server's own state).
EXCLUDED = frozenset(
    {
        "public.system_log_counts",
        "public.system_log_error_counts",
        "public.job_status_totals",
        "public.job_status_fold",
        "public.job_status_deltas",  # dropped by migration 0095 (created by 0032)
        "public.rate_limit_buckets",
        "public.daemon_leases",
        "public.daemon_duty_status",
        "public.provider_health",
        "public.schema_migrations",
        "public.schema_functions",
    }
)
# Tables the migrations themselves fill (the upload signing key of 0090): a freshly
# migrated hub holds a row there, which is not "hub data" a restore would replace. They
# are backed up and restored like any table (a restored hub keeps honouring the upload
# credentials it handed out).
SEEDED = frozenset({"hub_internal.upload_signing_key"})
# Derived tables a restore over an existing hub empties before the load (the load's
# triggers and the finishing function refill them).
DERIVED = (
    "public.system_log_counts",
    "public.system_log_error_counts",
    "public.job_status_totals",
    "public.job_status_fold",
)
LOG_TABLES = frozenset({"public.system_logs", "public.system_log_server_timed_ids"})

_CREATE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(public|hub_internal)\.(\w+)\s*(\(|PARTITION)",
    re.IGNORECASE,
)


def hub_tables(files: SchemaFiles) -> list[str]:
    """``schema.table`` of every table the migrations create (partitions of another
    table excluded), in migration order, minus :data:`EXCLUDED`."""
    names: list[str] = []
    for file in files.migrations:
        for schema, table, after in _CREATE.findall(file.text):
            name = f"{schema}.{table}".lower()
            if after.upper() == "PARTITION" or name in EXCLUDED or name in names:
                continue
            names.append(name)
    return names


@dataclass(frozen=True)
class BackupInfo:
    """One backup file and the summary of its manifest."""

    id: str
    path: Path
    size_bytes: int
    created_at: datetime
    hub_version: str
    server_version: str
    rows: dict[str, int]
    with_logs: bool

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /api/backups`` entries."""
        return {
            "id": self.id,
            "file": self.path.name,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at.isoformat(),
            "hub_version": self.hub_version,
            "server_version": self.server_version,
            "rows": self.rows,
            "total_rows": sum(self.rows.values()),
            "with_logs": self.with_logs,
        }


def backup_name(when: datetime, *, precise: bool = False) -> str:
    """The file name of a backup made at ``when`` (UTC, to the second; ``precise`` adds
    microseconds, for a second backup within the same second)."""
    stamp = f"{when.astimezone(UTC):%Y%m%dT%H%M%S}" + (f"{when:%f}" if precise else "")
    return f"hub-backup-{stamp}Z.tar"


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a backup file, or a one-line :class:`BackupError` (status 400)."""
    try:
        with tarfile.open(path, "r:") as tar:
            member = tar.getmember(MANIFEST)
            extracted = tar.extractfile(member)
            if extracted is None or member.size > 16 * 1024 * 1024:
                raise KeyError(MANIFEST)
            manifest: Any = json.loads(extracted.read())
            tar.getmember(DATA)
    except FileNotFoundError:
        raise BackupError(f"backup file {path} does not exist", status=404) from None
    except (tarfile.TarError, KeyError, ValueError, OSError) as error:
        reason = "it has no manifest.json and data.dump" if isinstance(error, KeyError) else error
        raise BackupError(
            f"{path} is not a hub backup ({reason}); expected a hub-backup-*.tar "
            "made by `orchestrator backup create`",
            status=400,
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(
            f"{path} has a manifest of another format ({manifest.get('format')!r} "
            f"where this hub reads {FORMAT})"
            if isinstance(manifest, dict)
            else f"{path} has a manifest that is not a JSON object",
            status=400,
        )
    return manifest


def info_of(path: Path, manifest: dict[str, Any]) -> BackupInfo:
    """The :class:`BackupInfo` of a backup file and its manifest."""
    match = FILE_PATTERN.match(path.name)
    return BackupInfo(
        id=match.group(1) if match else path.stem,
        path=path,
        size_bytes=path.stat().st_size,
        created_at=datetime.fromisoformat(str(manifest["created_at"])),
        hub_version=str(manifest.get("hub_version", "?")),
        server_version=str(manifest.get("server_version", "?")),
        rows={str(k): int(v) for k, v in dict(manifest.get("rows", {})).items()},
        with_logs=bool(manifest.get("with_logs", True)),
    )
