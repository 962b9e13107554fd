"""Abandoned multipart uploads and stale temporary files leave the storage directory.

S3 keeps the parts of an upload nobody completes or aborts until a lifecycle rule
removes them; ours go by the same rule, run by the daemon (duty ``multipart_expiry``):
``func_expire_multipart_uploads`` hands out, and forgets in the same statement, every
upload started more than ``ORCHESTRATOR_STORAGE_MULTIPART_EXPIRY_HOURS`` ago or whose
job ended more than a grace period ago, and quiet for that grace period; this module
then removes their ``{storage_dir}/.multipart/{upload_id}/`` directories.

Why a writer is never robbed: a part streams into ``.tmp`` and is renamed into the
upload's directory only when whole, and UploadPart and CompleteMultipartUpload mark the
row active when they begin (``func_touch_multipart_upload``), so an upload being written
is not due until it has been quiet for the grace period. If a part outlives even that,
its ``func_record_upload_part`` finds no row and the endpoint removes the part and
answers NoSuchUpload; a Complete finds no row and answers NoSuchUpload.

Paths are built from upload ids only after checking them against the table's own
pattern, and resolved paths must stay inside ``.multipart``: nothing outside the
storage directory can be removed, whatever the database holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.storage import calls

logger = logging.getLogger("orchestrator.storage.expiry")

TMP_DIR = ".tmp"
PARTS_DIR = ".multipart"
STALE_TEMP_SECONDS = 86_400
GRACE_MINUTES = 60
BATCH = 1000
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def parts_dir(root: Path, upload_id: str) -> Path | None:
    """``root/.multipart/{upload_id}`` if the id is well-formed and the path stays
    inside ``root/.multipart`` (a symlink pointing elsewhere is refused); else None."""
    if not _UPLOAD_ID.match(upload_id):
        return None
    base = (root / PARTS_DIR).resolve()
    path = base / upload_id
    if path.is_symlink() or not path.resolve().is_relative_to(base):
        return None
    return path


def remove_parts(root: Path, upload_id: str) -> bool:
    """Removes an upload's part directory; False when there was none or the id is bad."""
    path = parts_dir(root, upload_id)
    if path is None or not path.is_dir():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def sweep_temporary_files(root: Path, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Removes temporary files a crashed process left (a live upload writes its file at
    least every batch, so a day-old one is nobody's); how many went."""
    tmp = root / TMP_DIR
    if not tmp.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for path in tmp.iterdir():
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    if removed:
        logger.info("Removed %d stale temporary upload file(s) from %s", removed, tmp)
    return removed


def _quiet_dirs(root: Path, older_than: float) -> list[str]:
    """Upload ids of part directories unchanged for ``older_than`` seconds."""
    base = root / PARTS_DIR
    if not base.is_dir():
        return []
    cutoff = time.time() - older_than
    found = []
    for path in base.iterdir():
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                found.append(path.name)
    return found


async def expire_multipart_uploads(
    executor: AsyncCallExecutor,
    root: Path,
    max_age_hours: int,
    grace_minutes: int = GRACE_MINUTES,
) -> dict[str, Any]:
    """The duty: forgets due uploads and removes their parts, then part directories no
    row knows (a crash between the two, or an instance that did not share the
    directory) once quiet for the grace period, then stale temporary files.
    Returns ``{expired, orphans, temporary}`` counts."""
    root = root.expanduser().resolve()
    expired = 0
    while True:
        answer = await executor.run(
            calls.expire_multipart_uploads(max_age_hours, grace_minutes, BATCH)
        )
        rows: list[dict[str, Any]] = answer["expired"]
        for row in rows:
            await asyncio.to_thread(remove_parts, root, str(row["upload_id"]))
        expired += len(rows)
        if len(rows) < BATCH:
            break
    orphans = 0
    for upload_id in await asyncio.to_thread(_quiet_dirs, root, grace_minutes * 60):
        if not _UPLOAD_ID.match(upload_id):
            continue
        if await executor.run(calls.get_multipart_upload(upload_id)) is None:
            orphans += await asyncio.to_thread(remove_parts, root, upload_id)
    temporary = await asyncio.to_thread(sweep_temporary_files, root)
    if expired or orphans:
        logger.info(
            "Multipart expiry: removed %d abandoned upload(s) and %d orphaned part "
            "directory(ies) under %s",
            expired,
            orphans,
            root / PARTS_DIR,
        )
    return {"expired": expired, "orphans": orphans, "temporary": temporary}
