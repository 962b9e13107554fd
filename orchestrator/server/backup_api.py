"""Admin endpoints of backup (OPS 14): ``GET/POST /api/backups``, ``GET /api/backups/{id}``
and ``GET /api/database/info``. Restore is deliberately CLI-only: it replaces live data,
and the instance answering the request would be one of the processes it must not race.

A backup runs on a worker thread (pg_dump is a child process), one at a time per
instance; its file lands in ``ORCHESTRATOR_BACKUP_DIR`` like the CLI's.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from orchestrator.backup import backup_database, backup_dir, database_info_at, list_backups
from orchestrator.backup.errors import BackupError
from orchestrator.backup.manifest import read_manifest
from orchestrator.server.auditing import append_event
from orchestrator.server.auth import hub_of, require_admin

router = APIRouter(tags=["backup"], dependencies=[Depends(require_admin)])
_ID = re.compile(r"^\d{8}T\d{6}(?:\d{6})?Z$")
_LOCK = "backup_lock"


def _refusal(error: BackupError) -> HTTPException:
    return HTTPException(error.status, str(error))


@router.get("/api/backups")
async def list_all(request: Request) -> dict[str, Any]:
    """The backups of the backup directory, newest first."""
    directory = backup_dir(hub_of(request).settings)
    backups = await asyncio.to_thread(list_backups, directory)
    return {"directory": str(directory), "backups": [b.as_dict() for b in backups]}


@router.post("/api/backups", status_code=201)
async def create(
    request: Request,
    with_logs: Annotated[bool, Body(embed=True)] = True,
) -> dict[str, Any]:
    """Takes a backup now; answers its summary once the file is in place."""
    hub = hub_of(request)
    lock = hub.services.setdefault(_LOCK, asyncio.Lock())
    if lock.locked():
        raise HTTPException(409, "a backup is already running on this instance; try again later")
    async with lock:
        try:
            info = await asyncio.to_thread(
                backup_database,
                hub.dsn,
                None,
                directory=backup_dir(hub.settings),
                with_logs=with_logs,
                pg_dump=hub.settings.pg_dump,
            )
        except BackupError as error:
            raise _refusal(error) from None
    await append_event(
        request,
        "backup_created",
        "create",
        target_type="backup",
        target_id=info.path.name,
        details={"rows": sum(info.rows.values()), "size_bytes": info.size_bytes},
    )
    return info.as_dict()


@router.get("/api/backups/{backup_id}")
async def show(request: Request, backup_id: str) -> dict[str, Any]:
    """The manifest of one backup (``id`` is its time, as listed: 20261206T101500Z)."""
    if not _ID.match(backup_id):
        raise HTTPException(
            422, f"invalid backup id {backup_id[:40]!r}: expected its time, like 20261206T101500Z"
        )
    path = backup_dir(hub_of(request).settings) / f"hub-backup-{backup_id}.tar"
    if not path.is_file():
        raise HTTPException(404, f"no backup {backup_id} in the backup directory")
    try:
        manifest: dict[str, Any] = await asyncio.to_thread(read_manifest, path)
    except BackupError as error:
        raise _refusal(error) from None
    return {"id": backup_id, "file": path.name, "size_bytes": path.stat().st_size, **manifest}


@router.get("/api/database/info")
async def database(request: Request) -> dict[str, Any]:
    """Size, server version, tables (estimated rows) and schema state of the hub's database."""
    hub = hub_of(request)
    return await asyncio.to_thread(database_info_at, hub.dsn, hub.label)
