"""Single-object operations and listings: PutObject, GetObject (with ``Range``),
HeadObject, DeleteObject, ListObjectsV2, ListBuckets, HeadBucket.

The file system holds the bytes, ``job_artifacts`` the index (ETag, size, listing order);
a PUT indexes its object only once the file is in place, so a listing never shows an
object that is not there whole.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from email.utils import formatdate

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from orchestrator.server.state import HubState
from orchestrator.server.storage import xml
from orchestrator.server.storage.auth import Principal
from orchestrator.server.storage.body import BodyPlan, receive
from orchestrator.server.storage.errors import S3Error
from orchestrator.server.storage.files import TempObject, object_path, remove_object
from orchestrator.server.storage.service import StorageService
from orchestrator.storage import calls

MAX_KEYS = 1000


def content_type(request: Request) -> str | None:
    """The object's Content-Type as the client gave it (kept for GetObject)."""
    value = request.headers.get("content-type")
    return value[:255] if value else None


async def put_object(
    request: Request, hub: HubState, svc: StorageService, who: Principal, bucket: str, key: str
) -> Response:
    """Streams the body to a temporary file, checks it, renames it into place, indexes it."""
    who.may_write(bucket, key)
    path = object_path(svc.root, bucket, key)
    plan = BodyPlan(request)
    svc.check_space(plan.length)
    sink = TempObject(svc.root, plan.digests())
    try:
        await receive(request, plan, who, sink, svc.max_object_bytes)
        etag = sink.digests.md5.hexdigest()
        await sink.commit(path)
    except BaseException:
        sink.discard()
        raise
    try:
        await hub.db.run(
            calls.record_artifact(
                bucket,
                key,
                str(who.job_id),
                sink.size,
                etag,
                content_type=content_type(request),
                access_key_id=who.access_key_id,
            )
        )
    except BaseException:
        path.unlink(missing_ok=True)  # not indexed: not an object
        raise
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


async def get_object(
    request: Request,
    hub: HubState,
    svc: StorageService,
    who: Principal,
    bucket: str,
    key: str,
) -> Response:
    """The object's bytes (a ``Range`` is honoured by Starlette's FileResponse); HEAD
    gets the same headers without a body."""
    who.may_read(bucket, key)
    path = object_path(svc.root, bucket, key)
    row = await hub.db.run(calls.get_artifact(bucket, key))
    if row is None or not path.is_file():
        raise S3Error("NoSuchKey", f"the key {key[:200]!r} does not exist in bucket {bucket!r}")
    stat = path.stat()
    headers = {
        "ETag": f'"{row["etag"]}"',
        "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
        "Accept-Ranges": "bytes",
    }
    return FileResponse(
        path,
        headers=headers,
        media_type=row.get("content_type") or "binary/octet-stream",
        stat_result=stat,
    )


async def delete_object(
    hub: HubState, svc: StorageService, who: Principal, bucket: str, key: str
) -> Response:
    """Removes the file and its index row (204 whether or not it existed, as S3)."""
    who.may_write(bucket, key)
    path = object_path(svc.root, bucket, key)
    await hub.db.run(calls.delete_artifact(bucket, key))
    remove_object(svc.root, path)
    return Response(status_code=204)


def _token(name: str, is_prefix: bool) -> str:
    raw = json.dumps({"a": name, "p": is_prefix}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _untoken(token: str) -> tuple[str, bool]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(data["a"]), bool(data["p"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise S3Error(
            "InvalidArgument", "the continuation token is invalid: pass NextContinuationToken as is"
        ) from None


async def list_objects(
    request: Request, hub: HubState, svc: StorageService, who: Principal, bucket: str
) -> Response:
    """ListObjectsV2: pages of at most 1000 in byte order, with common prefixes."""
    params = request.query_params
    if params.get("list-type") != "2":
        raise S3Error("NotImplemented", "only ListObjectsV2 (list-type=2) is implemented")
    prefix = params.get("prefix", "")
    who.may_list(bucket, prefix)
    try:
        max_keys = min(MAX_KEYS, int(params.get("max-keys", str(MAX_KEYS))))
    except ValueError:
        raise S3Error("InvalidArgument", "max-keys must be an integer from 0 to 1000") from None
    if max_keys < 0:
        raise S3Error("InvalidArgument", "max-keys must be an integer from 0 to 1000")
    if who.admin and not (svc.root / bucket).is_dir():
        raise S3Error("NoSuchBucket", f"the bucket {bucket!r} does not exist")
    after, is_prefix = None, False
    if params.get("continuation-token"):
        after, is_prefix = _untoken(params["continuation-token"])
    elif params.get("start-after"):
        after = params["start-after"]
    page = await hub.db.run(
        calls.list_artifacts(
            bucket, prefix, params.get("delimiter") or None, after, is_prefix, max_keys
        )
    )
    last = page["entries"][-1] if page["entries"] else None
    next_token = _token(last["name"], last["is_prefix"]) if page["truncated"] and last else None
    return xml.respond(
        xml.list_objects(bucket, params, page, max_keys=max_keys, next_token=next_token)
    )


async def list_buckets(hub: HubState, who: Principal) -> Response:
    """ListBuckets: every bucket with objects (admin), or the credential's own bucket."""
    if who.admin:
        buckets = await hub.db.run(calls.list_upload_buckets())
    else:
        buckets = [{"bucket": who.bucket, "created_at": "1970-01-01T00:00:00+00:00"}]
        with contextlib.suppress(StopIteration):
            found = await hub.db.run(calls.list_upload_buckets())
            buckets = [next(b for b in found if b["bucket"] == who.bucket)]
    return xml.respond(xml.list_buckets(buckets))


async def head_bucket(svc: StorageService, who: Principal, bucket: str) -> Response:
    """HeadBucket: 200 for the credential's bucket (or, for the admin, one on disk)."""
    if who.admin:
        if not (svc.root / bucket).is_dir():
            raise S3Error("NoSuchBucket", f"the bucket {bucket!r} does not exist")
    elif bucket != who.bucket:
        raise S3Error("AccessDenied", f"this credential may use bucket {who.bucket!r} only")
    return Response(status_code=200)
