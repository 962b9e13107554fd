"""Receiving a request body into a :class:`~orchestrator.server.storage.files.TempObject`,
in whichever payload mode the client signed, and checking every digest it declared.

Modes (``x-amz-content-sha256``): a hex SHA-256 (verified as the bytes stream:
``XAmzContentSHA256Mismatch``), ``UNSIGNED-PAYLOAD``, and the ``aws-chunked`` streams
(``STREAMING-UNSIGNED-PAYLOAD-TRAILER``, ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``).
Checksums (``Content-MD5``, ``x-amz-checksum-*`` as header or trailer): MD5, CRC32,
CRC32C, CRC64NVME, SHA-1 and SHA-256, every one verified (``BadDigest``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from starlette.requests import ClientDisconnect, Request

from orchestrator.server.storage import sigv4
from orchestrator.server.storage.auth import Principal
from orchestrator.server.storage.chunked import AwsChunkedDecoder
from orchestrator.server.storage.errors import S3Error
from orchestrator.server.storage.files import Digests, TempObject

VERIFIED = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
STREAMING_SIGNED = (
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
)
STREAMING = (*STREAMING_SIGNED, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")


class BodyPlan:
    """What a request's headers say about its body: framing, size and digests to check."""

    def __init__(self, request: Request) -> None:
        headers = request.headers
        self.payload_hash = headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        self.chunked = self.payload_hash in STREAMING or "aws-chunked" in headers.get(
            "content-encoding", ""
        )
        name = "x-amz-decoded-content-length" if self.chunked else "content-length"
        length = headers.get(name)
        try:
            self.length = int(length) if length is not None else None
        except ValueError:
            raise S3Error("InvalidArgument", f"bad {name} {str(length)[:20]!r}") from None
        self.content_md5 = headers.get("content-md5")
        self.checksums = {
            name: headers[f"x-amz-checksum-{name}"]
            for name in VERIFIED
            if f"x-amz-checksum-{name}" in headers
        }
        trailer = headers.get("x-amz-trailer", "").strip().lower()
        self.trailer = (
            trailer[len("x-amz-checksum-") :] if trailer.startswith("x-amz-checksum-") else None
        )
        wanted = set(self.checksums) | ({self.trailer} if self.trailer else set())
        if len(self.payload_hash) == 64:
            wanted.add("sha256")
        self.digest_names = wanted

    def digests(self) -> Digests:
        """Fresh digests for everything this body must be checked against."""
        return Digests(self.digest_names)


def _decoder(plan: BodyPlan, principal: Principal) -> AwsChunkedDecoder | None:
    if not plan.chunked:
        return None
    if plan.payload_hash in STREAMING_SIGNED and principal.signed is not None:
        signed, key = principal.signed, principal.key

        def signer(previous: str, chunk_sha256: str) -> str:
            return sigv4.sign(key, sigv4.chunk_string_to_sign(signed, previous, chunk_sha256))

        return AwsChunkedDecoder(chunk_signer=signer, seed=signed.signature)
    return AwsChunkedDecoder()


async def receive(
    request: Request, plan: BodyPlan, principal: Principal, sink: TempObject, max_bytes: int
) -> None:
    """Streams the body into ``sink`` and checks it; raises S3Error (the caller discards
    the temporary file) or ClientDisconnect (likewise)."""
    if plan.length is not None and plan.length > max_bytes:
        raise S3Error(
            "EntityTooLarge", f"the object is {plan.length} bytes; at most {max_bytes} are accepted"
        )
    decoder = _decoder(plan, principal)
    received = 0
    async for data in request.stream():
        if not data:
            continue
        pieces = decoder.feed(data) if decoder is not None else [data]
        for piece in pieces:
            received += len(piece)
            if received > max_bytes:
                raise S3Error(
                    "EntityTooLarge", f"the object exceeds {max_bytes} bytes, the most accepted"
                )
            await sink.add(piece)
    if decoder is not None:
        decoder.finish()
    await sink.flush()
    if plan.length is not None and received != plan.length:
        raise S3Error("IncompleteBody", f"received {received} bytes of the {plan.length} announced")
    check(plan, sink.digests, decoder.trailers if decoder is not None else {})


def check(plan: BodyPlan, digests: Digests, trailers: dict[str, str]) -> None:
    """Every digest the client declared, against what arrived."""
    if len(plan.payload_hash) == 64 and not hmac.compare_digest(
        digests.sha256_hex() or "", plan.payload_hash.lower()
    ):
        raise S3Error(
            "XAmzContentSHA256Mismatch",
            "the provided x-amz-content-sha256 header does not match what was computed",
        )
    if plan.content_md5 is not None:
        try:
            wanted = base64.b64decode(plan.content_md5, validate=True)
        except (binascii.Error, ValueError):
            wanted = b""
        if len(wanted) != 16:
            raise S3Error("InvalidDigest", "Content-MD5 must be the base64 of a 16-byte MD5")
        if not hmac.compare_digest(wanted, digests.md5.digest()):
            raise S3Error(
                "BadDigest", "the Content-MD5 you specified did not match what we received"
            )
    declared: dict[str, Any] = dict(plan.checksums)
    if plan.trailer:
        value = trailers.get(f"x-amz-checksum-{plan.trailer}")
        if value is None:
            raise S3Error(
                "InvalidRequest", f"the trailer x-amz-checksum-{plan.trailer} did not arrive"
            )
        declared[plan.trailer] = value
    for name, value in declared.items():
        computed = digests.checksum_b64(name)
        if computed is not None and not hmac.compare_digest(computed, str(value).strip()):
            raise S3Error(
                "BadDigest",
                f"the {name.upper()} checksum you specified did not match what we received",
            )


__all__ = ["BodyPlan", "ClientDisconnect", "check", "receive"]
