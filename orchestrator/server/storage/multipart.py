"""Multipart uploads: CreateMultipartUpload, UploadPart (parts in any order),
CompleteMultipartUpload, AbortMultipartUpload.

Each part streams to a temporary file and is renamed to
``{storage_dir}/.multipart/{upload_id}/{part number}``; its size and MD5 go to
``multipart_uploads`` (what upload progress shows). Completing checks the listed parts
(ascending, known, ETags matching, every part but the last at least 5 MiB), joins them
into one temporary file in a thread, renames it into place and indexes the object in
the same transaction that forgets the upload. ETag = ``md5(part md5s)-N``, as S3.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.server.state import HubState
from orchestrator.server.storage import xml
from orchestrator.server.storage.auth import Principal
from orchestrator.server.storage.body import BodyPlan, receive
from orchestrator.server.storage.errors import S3Error
from orchestrator.server.storage.files import (
    PARTS_DIR,
    TMP_DIR,
    TempObject,
    check_key,
    object_path,
    place,
)
from orchestrator.server.storage.objects import content_type
from orchestrator.server.storage.service import (
    MAX_PART_BYTES,
    MAX_PARTS,
    MIN_PART_BYTES,
    StorageService,
)
from orchestrator.storage import calls


def _parts_dir(svc: StorageService, upload_id: str) -> Path:
    return svc.root / PARTS_DIR / upload_id


async def _upload(
    hub: HubState, who: Principal, bucket: str, key: str, upload_id: str, *, touch: bool = False
) -> dict[str, Any]:
    """The upload in progress, if it is this credential's and this key's; else NoSuchUpload.
    ``touch`` marks it active now (UploadPart, Complete): the expiry duty leaves an upload
    alone until it has been quiet for a grace period, so a part streaming now is safe."""
    read = calls.touch_multipart_upload if touch else calls.get_multipart_upload
    row = await hub.db.run(read(upload_id)) if len(upload_id) <= 64 else None
    if (
        row is None
        or row["bucket"] != bucket
        or row["key"] != key
        or str(row["job_id"]) != who.job_id
    ):
        raise S3Error(
            "NoSuchUpload",
            f"the upload {upload_id[:64]!r} does not exist (it may have been completed or aborted)",
        )
    return row


async def create(
    request: Request, hub: HubState, svc: StorageService, who: Principal, bucket: str, key: str
) -> Response:
    """CreateMultipartUpload: a new upload id, recorded for progress."""
    who.may_write(bucket, key)
    object_path(svc.root, bucket, check_key(key))
    svc.check_space(None)
    upload_id = secrets.token_urlsafe(24)
    await hub.db.run(
        calls.start_multipart_upload(
            upload_id,
            str(who.job_id),
            bucket,
            key,
            access_key_id=who.access_key_id,
            content_type=content_type(request),
        )
    )
    _parts_dir(svc, upload_id).mkdir(parents=True, exist_ok=True)
    return xml.respond(xml.initiated(bucket, key, upload_id))


async def upload_part(
    request: Request, hub: HubState, svc: StorageService, who: Principal, bucket: str, key: str
) -> Response:
    """UploadPart: streamed to its own file, then recorded."""
    who.may_write(bucket, key)
    params = request.query_params
    number_text = params.get("partNumber", "")
    if not number_text.isdigit() or not 1 <= int(number_text) <= MAX_PARTS:
        raise S3Error("InvalidArgument", "partNumber must be an integer from 1 to 10000")
    number, upload_id = int(number_text), params.get("uploadId", "")
    row = await _upload(hub, who, bucket, key, upload_id, touch=True)
    plan = BodyPlan(request)
    # The upload's other parts (a part sent again replaces its earlier self) leave this
    # much room under ORCHESTRATOR_STORAGE_MAX_UPLOAD_BYTES; Complete checks the total
    # again, since parts sent in parallel each see the total as it was when they began.
    earlier = row["parts"].get(str(number))
    others = int(row["bytes"]) - (int(earlier["size"]) if earlier else 0)
    room = svc.max_upload_bytes - others
    if room <= 0 or (plan.length is not None and plan.length > room):
        raise S3Error(
            "EntityTooLarge",
            f"part {number} would take the upload past {svc.max_upload_bytes} bytes "
            f"(ORCHESTRATOR_STORAGE_MAX_UPLOAD_BYTES); its other parts hold {others}",
        )
    svc.check_space(plan.length)
    sink = TempObject(svc.root, plan.digests())
    target = _parts_dir(svc, upload_id) / str(number)
    try:
        await receive(request, plan, who, sink, min(MAX_PART_BYTES, room))
        etag = sink.digests.md5.hexdigest()
        await sink.commit(target, durable=False)
    except BaseException:
        sink.discard()
        raise
    recorded = await hub.db.run(calls.record_upload_part(upload_id, number, sink.size, etag))
    if recorded is None:  # aborted or completed while this part streamed
        target.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the rename re-created an expired upload's dir
            target.parent.rmdir()
        raise S3Error("NoSuchUpload", f"the upload {upload_id!r} ended while the part arrived")
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


async def _read_small(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for data in request.stream():
        body += data
        if len(body) > limit:
            raise S3Error("MalformedXML", f"the CompleteMultipartUpload body exceeds {limit} bytes")
    return bytes(body)


def _join(paths: list[Path], tmp: Path, target: Path) -> None:
    """Concatenates the parts in the kernel (``copy_file_range``: no copy through Python,
    a reflink where the filesystem offers one), then fsync and rename."""
    with open(tmp, "wb") as out:
        for path in paths:
            with open(path, "rb") as part:
                left = os.fstat(part.fileno()).st_size
                try:
                    while left > 0:
                        done = os.copy_file_range(part.fileno(), out.fileno(), left)
                        if done == 0:
                            break
                        left -= done
                except OSError:  # e.g. a filesystem without it: copy through user space
                    part.seek(-left, os.SEEK_END)
                    shutil.copyfileobj(part, out, 1024 * 1024)
                    left = 0
                if left:
                    raise FileNotFoundError(f"part {path.name} shrank while being joined")
        out.flush()
        os.fsync(out.fileno())
    place(tmp, target)


async def complete(
    request: Request, hub: HubState, svc: StorageService, who: Principal, bucket: str, key: str
) -> Response:
    """CompleteMultipartUpload: checks the part list, joins the parts, indexes the object."""
    who.may_write(bucket, key)
    upload_id = request.query_params.get("uploadId", "")
    row = await _upload(hub, who, bucket, key, upload_id, touch=True)
    listed = xml.parse_part_list(await _read_small(request, xml.MAX_COMPLETE_BYTES))
    numbers = [n for n, _ in listed]
    if numbers != sorted(set(numbers)):
        raise S3Error("InvalidPartOrder", "the parts must be listed in ascending order, each once")
    stored: dict[str, Any] = row["parts"]
    digests = hashlib.md5(usedforsecurity=False)
    size = 0
    for index, (number, etag) in enumerate(listed):
        part = stored.get(str(number))
        if part is None or part["etag"] != etag:
            raise S3Error(
                "InvalidPart",
                f"part {number} was not uploaded, or its ETag is not {etag!r}: upload it again",
            )
        if index < len(listed) - 1 and int(part["size"]) < MIN_PART_BYTES:
            raise S3Error("EntityTooSmall", f"part {number} is smaller than 5 MiB and not the last")
        digests.update(bytes.fromhex(part["etag"]))
        size += int(part["size"])
    if size > svc.max_upload_bytes:
        raise S3Error(
            "EntityTooLarge",
            f"the parts listed add up to {size} bytes; at most {svc.max_upload_bytes} are "
            "accepted (ORCHESTRATOR_STORAGE_MAX_UPLOAD_BYTES)",
        )
    etag = f"{digests.hexdigest()}-{len(listed)}"
    target = object_path(svc.root, bucket, key)
    parts_dir = _parts_dir(svc, upload_id)
    tmp = svc.root / TMP_DIR / f"join-{secrets.token_hex(12)}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        await asyncio.to_thread(_join, [parts_dir / str(n) for n in numbers], tmp, target)
    except FileNotFoundError:
        tmp.unlink(missing_ok=True)
        raise S3Error("InvalidPart", "a listed part's file is missing: upload it again") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        await hub.db.run(
            calls.record_artifact(
                bucket,
                key,
                str(who.job_id),
                size,
                etag,
                content_type=row.get("content_type"),
                access_key_id=who.access_key_id,
                upload_id=upload_id,
            )
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    await asyncio.to_thread(shutil.rmtree, parts_dir, True)
    location = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
    return xml.respond(xml.completed(location, bucket, key, etag))


async def abort(
    request: Request, hub: HubState, svc: StorageService, who: Principal, bucket: str, key: str
) -> Response:
    """AbortMultipartUpload: forgets the upload and removes its parts."""
    who.may_write(bucket, key)
    upload_id = request.query_params.get("uploadId", "")
    await _upload(hub, who, bucket, key, upload_id)
    await hub.db.run(calls.end_multipart_upload(upload_id))
    await asyncio.to_thread(shutil.rmtree, _parts_dir(svc, upload_id), True)
    return Response(status_code=204)
