"""``/api/cloud/storage``: the S3-compatible endpoint, path-style
(``/api/cloud/storage/{bucket}/{key}``), for jobs' uploads and the admin's reads.

Every request is authenticated (:mod:`.auth`), then routed by method and sub-resource
to :mod:`.objects` or :mod:`.multipart`; anything else S3 has is ``NotImplemented``.
Errors are S3 XML (a real client raises the code its user expects), never the hub's
JSON; 403s are audited as ``upload_rejected`` (one row per credential or address per
minute). Bodies are never read whole: they stream to disk (:mod:`.files`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from orchestrator.errors import DatabaseUnavailable
from orchestrator.server.auditing import append_event
from orchestrator.server.auth import hub_of
from orchestrator.server.clientaddr import client_address
from orchestrator.server.state import HubState
from orchestrator.server.storage import multipart, objects
from orchestrator.server.storage.auth import Principal, authenticate
from orchestrator.server.storage.errors import S3Error, error_response
from orchestrator.server.storage.files import check_bucket, check_key
from orchestrator.server.storage.service import StorageService, storage_of

logger = logging.getLogger("orchestrator.server.storage")

PREFIX = "/api/cloud/storage"
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]
REJECTED_WINDOW = 60
DRAIN_LIMIT = 1024 * 1024
# Sub-resources of S3 this endpoint does not offer (ACLs, tagging, versions, ...).
_UNSUPPORTED = {
    "acl",
    "tagging",
    "versions",
    "versioning",
    "policy",
    "cors",
    "lifecycle",
    "location",
    "uploads",
    "delete",
    "restore",
    "select",
    "torrent",
    "attributes",
}

router = APIRouter(include_in_schema=False)

Handler = Callable[[], Awaitable[Response]]


def _split(path: str) -> tuple[str | None, str | None]:
    """``(bucket, key)`` of a request path under the prefix (either may be None)."""
    rest = path[len(PREFIX) :].lstrip("/")
    if not rest:
        return None, None
    bucket, _, key = rest.partition("/")
    return bucket, (key or None)


def _route(request: Request, hub: HubState, svc: StorageService, who: Principal) -> Handler:
    bucket, key = _split(request.scope["path"])
    method, query = request.method, request.query_params
    if bucket is None:
        if method in ("GET", "HEAD"):
            return lambda: objects.list_buckets(hub, who)
        raise S3Error("MethodNotAllowed", f"{method} is not allowed on the service")
    check_bucket(bucket)
    if key is None:
        if method == "GET" and not (_UNSUPPORTED & set(query)):
            return lambda: objects.list_objects(request, hub, svc, who, bucket)
        if method == "HEAD":
            return lambda: objects.head_bucket(svc, who, bucket)
        raise S3Error("NotImplemented", f"{method} on a bucket is not implemented by this endpoint")
    check_key(key)
    if method == "POST" and "uploads" in query:
        return lambda: multipart.create(request, hub, svc, who, bucket, key)
    if _UNSUPPORTED & set(query) or "x-amz-copy-source" in request.headers:
        raise S3Error("NotImplemented", "this S3 operation is not implemented by this endpoint")
    upload = "uploadId" in query
    handlers: dict[tuple[str, bool], Handler] = {
        ("PUT", False): lambda: objects.put_object(request, hub, svc, who, bucket, key),
        ("PUT", True): lambda: multipart.upload_part(request, hub, svc, who, bucket, key),
        ("POST", True): lambda: multipart.complete(request, hub, svc, who, bucket, key),
        ("DELETE", True): lambda: multipart.abort(request, hub, svc, who, bucket, key),
        ("DELETE", False): lambda: objects.delete_object(hub, svc, who, bucket, key),
        ("GET", False): lambda: objects.get_object(request, hub, svc, who, bucket, key),
        ("HEAD", False): lambda: objects.get_object(request, hub, svc, who, bucket, key),
    }
    handler = handlers.get((method, upload))
    if handler is None:
        raise S3Error("NotImplemented", "this S3 operation is not implemented by this endpoint")
    return handler


def _resource(request: Request) -> str:
    """The path as sent (percent-encoded, so never a raw control character)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    return bytes(raw).decode("latin-1")[:1024]


async def _audit(request: Request, error: S3Error) -> None:
    header = request.headers.get("authorization", "")
    credential = header.partition("Credential=")[2].partition("/")[0][:32] or None
    await append_event(
        request,
        "upload_rejected",
        "upload",
        actor=credential,
        target_type="object",
        target_id=_resource(request),
        details={"method": request.method, "code": error.code, "reason": error.message[:300]},
        throttle_key=credential or client_address(request) or "unknown",
        throttle_seconds=REJECTED_WINDOW,
    )


async def _drained(request: Request) -> bool:
    """Reads and drops what is left of a refused request's body (at most DRAIN_LIMIT), so
    the keep-alive connection's next request starts where it should (uvicorn's h11 would
    otherwise read the leftover bytes as the start of it); False: close instead."""
    if getattr(request, "_stream_consumed", False):
        return True
    length = request.headers.get("content-length")
    if length is None and "transfer-encoding" not in request.headers:
        return True
    if length is not None and (not length.isdigit() or int(length) > DRAIN_LIMIT):
        return False
    seen = 0
    try:
        async for data in request.stream():
            seen += len(data)
            if seen > DRAIN_LIMIT:
                return False
    except (ClientDisconnect, RuntimeError):
        return False
    return True


async def handle(request: Request) -> Response:
    """One S3 request, start to finish."""
    hub = hub_of(request)
    svc = storage_of(hub)
    request_id = str(getattr(request.state, "correlation_id", None) or "none")
    head = request.method == "HEAD"
    try:
        who = await authenticate(request, hub, svc.cache)
        response = await _route(request, hub, svc, who)()
    except S3Error as error:
        if error.status == 403:
            logger.warning(
                "Upload refused for %s %s: %s", request.method, request.url.path, error.code
            )
            await _audit(request, error)
        response = error_response(error, request_id, _resource(request), head=head)
        if not await _drained(request):
            response.headers["Connection"] = "close"
        return response
    except ClientDisconnect:
        logger.info(
            "Client went away during %s %s; nothing was stored", request.method, request.url.path
        )
        return Response(status_code=400)
    except DatabaseUnavailable as error:
        failure = S3Error("ServiceUnavailable", f"database unavailable: {error}")
        return error_response(failure, request_id, _resource(request), head=head)
    response.headers["x-amz-request-id"] = request_id
    return response


@router.api_route(PREFIX, methods=METHODS)
@router.api_route(PREFIX + "/", methods=METHODS)
@router.api_route(PREFIX + "/{rest:path}", methods=METHODS)
async def storage(request: Request) -> Response:
    """The S3 endpoint (path-style); see the module docstring."""
    return await handle(request)
