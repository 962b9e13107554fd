"""The S3 endpoint's protocol pieces without a server: SigV4 against AWS's published
streaming example, the aws-chunked decoder under every split, keys that try to escape."""

from __future__ import annotations

import hashlib
import zlib
from base64 import b64encode
from pathlib import Path

import pytest

from orchestrator.server.storage import sigv4
from orchestrator.server.storage.chunked import AwsChunkedDecoder
from orchestrator.server.storage.errors import S3Error
from orchestrator.server.storage.files import check_key, object_path

# AWS's worked example "Signature Calculations for the Authorization Header: Transferring
# Payload in Multiple Chunks" (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNKS = [
    (65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
    (1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
    (0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
]
HEADERS = [
    ("Host", "s3.amazonaws.com"),
    ("x-amz-date", "20130524T000000Z"),
    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
    ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    ("Content-Encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "66560"),
    ("Content-Length", "66824"),
]
AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
    "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
    f"x-amz-decoded-content-length;x-amz-storage-class, Signature={SEED}"
)


def _aws_example() -> tuple[sigv4.Signed, bytes, bytes]:
    signed = sigv4.parse_authorization(AUTH, "20130524T000000Z")
    key = sigv4.signing_key(SECRET, signed)
    body = b"".join(
        f"{size:x};chunk-signature={signature}\r\n".encode() + b"a" * size + b"\r\n"
        for size, signature in CHUNKS
    )
    return signed, key, body


def _decoder(signed: sigv4.Signed, key: bytes) -> AwsChunkedDecoder:
    def signer(previous: str, chunk_sha256: str) -> str:
        return sigv4.sign(key, sigv4.chunk_string_to_sign(signed, previous, chunk_sha256))

    return AwsChunkedDecoder(chunk_signer=signer, seed=signed.signature)


def test_the_published_streaming_example_verifies_seed_and_every_chunk():
    signed, key, body = _aws_example()
    canonical = sigv4.canonical_request(
        "PUT", "/examplebucket/chunkObject.txt", "", HEADERS, signed, signed_payload()
    )
    sigv4.verify(key, signed, canonical)  # the seed signature
    decoder = _decoder(signed, key)
    out = b"".join(
        piece for i in range(0, len(body), 7000) for piece in decoder.feed(body[i : i + 7000])
    )
    decoder.finish()
    assert out == b"a" * 66560
    tampered = bytearray(body)
    tampered[200] ^= 1  # one payload byte of the first chunk
    with pytest.raises(S3Error) as caught:
        _decoder(signed, key).feed(bytes(tampered))
    assert caught.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as wrong:
        sigv4.verify(sigv4.signing_key("not-the-secret", signed), signed, canonical)
    assert wrong.value.code == "SignatureDoesNotMatch"


def signed_payload() -> str:
    return "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"


def test_unsigned_trailer_stream_decodes_the_same_under_every_split():
    payload = bytes(range(256)) * 40
    crc = b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    body = (
        f"{4000:x}\r\n".encode()
        + payload[:4000]
        + b"\r\n"
        + f"{len(payload) - 4000:x}\r\n".encode()
        + payload[4000:]
        + b"\r\n"
        + f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    )
    for step in (1, 2, 3, 5, 17, 4001, len(body)):
        decoder = AwsChunkedDecoder()
        out = b"".join(
            p for i in range(0, len(body), step) for p in decoder.feed(body[i : i + step])
        )
        decoder.finish()
        assert out == payload and decoder.trailers == {"x-amz-checksum-crc32": crc}, step
    cut = AwsChunkedDecoder()
    cut.feed(body[:5000])
    with pytest.raises(S3Error, match="ended before its final chunk"):
        cut.finish()
    with pytest.raises(S3Error, match="bad chunk size"):
        AwsChunkedDecoder().feed(b"zz\r\n")
    with pytest.raises(S3Error, match="too long"):
        AwsChunkedDecoder().feed(b"1" * 5000)


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a/../b", "..", "a/./b", "a//b", "a/", "nul\0byte", "line\nbreak", "x" * 1025],
)
def test_keys_that_could_name_anything_else_are_refused(key):
    with pytest.raises(S3Error) as caught:
        check_key(key)
    assert caught.value.code == "InvalidArgument" and "\n" not in caught.value.message


def test_a_symlink_inside_the_bucket_cannot_lead_outside(tmp_path: Path):
    root = tmp_path / "storage"
    (root / "outputs" / "job").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "outputs" / "job" / "link").symlink_to(tmp_path / "elsewhere")
    assert object_path(root, "outputs", "job/ok.bin") == (root / "outputs/job/ok.bin").resolve()
    with pytest.raises(S3Error, match="leaves the bucket"):
        object_path(root, "outputs", "job/link/x.bin")
    with pytest.raises(S3Error) as bucket:
        object_path(root, "../etc", "x")
    assert bucket.value.code == "InvalidBucketName"


def test_clock_skew_and_credential_scope():
    from datetime import UTC, datetime, timedelta

    signed = sigv4.parse_authorization(AUTH, "20130524T000000Z")
    now = datetime(2013, 5, 24, tzinfo=UTC)
    sigv4.check_time(signed, now + timedelta(minutes=14))
    with pytest.raises(S3Error) as skew:
        sigv4.check_time(signed, now + timedelta(minutes=16))
    assert skew.value.code == "RequestTimeTooSkewed"
    with pytest.raises(S3Error) as malformed:
        sigv4.parse_authorization(AUTH.replace("/aws4_request", "/bogus"), "20130524T000000Z")
    assert malformed.value.code == "AuthorizationHeaderMalformed"
    assert hashlib.sha256(b"").hexdigest() == sigv4.EMPTY_SHA256
