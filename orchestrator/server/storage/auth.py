"""Who is asking: a job's credential (SigV4, checked against the job's state in the DB), or
the admin bearer token (read-only), and what each may touch.

A job's credential works only under ``{bucket}/{job_id}/`` and only while the job is
queued or running (``func_check_upload_credential``). Answers are cached per instance
for at most ``CACHE_SECONDS``, so a completed or cancelled job's uploads fail within
that long; the cache holds derived secrets in memory only.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from orchestrator.server.state import HubState
from orchestrator.server.storage import sigv4
from orchestrator.server.storage.errors import S3Error
from orchestrator.storage.calls import check_upload_credential

CACHE_SECONDS = 2.0
TOKEN_NAME = "ORCHESTRATOR_API_TOKEN"  # noqa: S105  (the secret's name, not its value)


@dataclass
class Principal:
    """The authenticated caller of one request."""

    admin: bool = False
    access_key_id: str | None = None
    job_id: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    signed: sigv4.Signed | None = None
    key: bytes = field(default=b"", repr=False)  # the SigV4 signing key (chunk signatures)

    def _own(self, bucket: str, key: str, verb: str) -> None:
        if bucket != self.bucket or not key.startswith(self.prefix or "\0"):
            raise S3Error(
                "AccessDenied",
                f"access denied: this credential may {verb} only under "
                f"{self.bucket}/{self.prefix} (job {self.job_id})",
            )

    def may_write(self, bucket: str, key: str) -> None:
        """AccessDenied unless ``bucket/key`` is under this job's prefix."""
        if self.admin:
            raise S3Error("AccessDenied", "the admin token may read and list, not write")
        self._own(bucket, key, "write")

    def may_read(self, bucket: str, key: str) -> None:
        """The admin reads everything; a job only its own prefix."""
        if not self.admin:
            self._own(bucket, key, "read")

    def may_list(self, bucket: str, prefix: str) -> None:
        """A job lists only with a prefix inside its own."""
        if not self.admin:
            self._own(bucket, prefix, "list")


class CredentialCache:
    """``func_check_upload_credential`` answers, kept ``CACHE_SECONDS`` per instance."""

    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, hub: HubState, access_key_id: str) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._entries.get(access_key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = await hub.db.run(check_upload_credential(access_key_id))
        if len(self._entries) > 10_000:  # unknown ids must not grow it without bound
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[access_key_id] = (now + self.ttl, answer)
        return answer


def _admin(hub: HubState, given: str) -> Principal:
    token = hub.secret_store.get(TOKEN_NAME)
    if token is None or not hmac.compare_digest(given.encode(), token.encode()):
        raise S3Error("AccessDenied", "wrong bearer token (or ORCHESTRATOR_API_TOKEN is not set)")
    return Principal(admin=True)


async def authenticate(request: Request, hub: HubState, cache: CredentialCache) -> Principal:
    """The request's principal, or the S3 error a client expects (InvalidAccessKeyId,
    SignatureDoesNotMatch, RequestTimeTooSkewed, AccessDenied)."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return _admin(hub, header[7:].strip())
    query = request.query_params
    if header:
        signed = sigv4.parse_authorization(header, request.headers.get("x-amz-date"))
        payload_hash = request.headers.get("x-amz-content-sha256")
        if not payload_hash:
            raise S3Error("InvalidRequest", "missing x-amz-content-sha256: S3 requests sign it")
    elif "X-Amz-Signature" in query:
        if request.method not in ("GET", "HEAD"):
            raise S3Error("AccessDenied", "presigned URLs are accepted for GET and HEAD only")
        signed = sigv4.parse_presigned(query)
        payload_hash = "UNSIGNED-PAYLOAD"
    elif "AWSAccessKeyId" in query or header.startswith("AWS "):
        raise S3Error(
            "AccessDenied",
            "Signature Version 2 is not accepted: sign with Signature Version 4 (for boto3 "
            "presigned URLs: Config(signature_version='s3v4'))",
        )
    else:
        raise S3Error(
            "AccessDenied",
            "anonymous access is not allowed: sign requests with the job's AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY, or send the admin bearer token to read",
        )
    found = await cache.get(hub, signed.access_key_id)
    if not found.get("found"):
        raise S3Error(
            "InvalidAccessKeyId",
            f"the access key id {signed.access_key_id[:32]!r} does not exist in our records",
        )
    key = sigv4.signing_key(str(found["secret_access_key"]), signed)
    canonical = sigv4.canonical_request(
        request.method,
        request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
        request.scope.get("query_string", b"").decode("latin-1"),
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
        signed,
        payload_hash,
    )
    sigv4.verify(key, signed, canonical)
    sigv4.check_time(signed, datetime.now(UTC))
    if not found.get("active"):
        raise S3Error(
            "AccessDenied", f"credential expired: job {found.get('job_id')}: {found.get('reason')}"
        )
    return Principal(
        access_key_id=signed.access_key_id,
        job_id=str(found["job_id"]),
        bucket=str(found["bucket"]),
        prefix=str(found["prefix"]),
        signed=signed,
        key=key,
    )
