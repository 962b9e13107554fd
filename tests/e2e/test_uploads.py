"""The S3-compatible upload endpoint with the real boto3 client (default configuration)
against a real `orchestrator serve`, over http (signed payloads) and https (aws-chunked
with a trailing CRC32), plus raw sockets for what boto3 never does (dying mid-body)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.crt.auth
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from orchestrator.jobs import calls as job_calls
from tests.e2e.uploads_support import TOKEN, Uploads, files_under, hub, uploads_hub

MiB = 1024 * 1024


def code_of(call: Any) -> str:
    """The S3 error code a boto3 call ends with."""
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_boto3_put_multipart_get_range_delete_and_progress(db_url, tmp_path, scheme):
    """A small put, a 64 MiB upload_file (multipart, parts out of order), byte-identical
    downloads, a Range read, progress in the job read and `jobs show`, a delete; no
    temporary file is left behind."""
    with uploads_hub(db_url, tmp_path, scheme) as up, hub(db_url) as db:
        cred = up.job(db)
        s3 = up.client(cred)
        prefix = cred["prefix"]
        put = s3.put_object(Bucket="outputs", Key=prefix + "small.txt", Body=b"hello uploads")
        assert put["ETag"] == f'"{hashlib.md5(b"hello uploads").hexdigest()}"'
        got = s3.get_object(Bucket="outputs", Key=prefix + "small.txt")
        assert got["Body"].read() == b"hello uploads" and got["ETag"] == put["ETag"]
        assert (up.storage / "outputs" / prefix / "small.txt").read_bytes() == b"hello uploads"

        big = tmp_path / "big.bin"
        with big.open("wb") as handle:
            for _ in range(64):
                handle.write(os.urandom(MiB))
        s3.upload_file(str(big), "outputs", prefix + "ckpt/model.bin")
        head = s3.head_object(Bucket="outputs", Key=prefix + "ckpt/model.bin")
        assert head["ContentLength"] == 64 * MiB and head["ETag"].endswith('-8"')
        back = tmp_path / "back.bin"
        s3.download_file("outputs", prefix + "ckpt/model.bin", str(back))
        assert sha256_file(back) == sha256_file(big)
        ranged = s3.get_object(Bucket="outputs", Key=prefix + "ckpt/model.bin", Range="bytes=10-19")
        assert ranged["Body"].read() == big.read_bytes()[10:20]

        detail = db.run(job_calls.get_job(cred["job_id"]))
        progress = detail.upload_progress
        assert progress["objects"] == 2 and progress["bytes"] == 64 * MiB + 13
        assert progress["in_progress"] == []
        shown = subprocess.run(
            [sys.executable, "-m", "orchestrator", "jobs", "show", cred["job_id"]],
            env={**os.environ, "DATABASE_URL": db_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"Uploads: 2 object(s), {64 * MiB + 13} bytes" in shown.stdout, shown.stdout

        s3.delete_object(Bucket="outputs", Key=prefix + "small.txt")
        assert code_of(lambda: s3.head_object(Bucket="outputs", Key=prefix + "small.txt")) == "404"
        assert (
            code_of(lambda: s3.get_object(Bucket="outputs", Key=prefix + "small.txt"))
            == "NoSuchKey"
        )
        assert files_under(up.storage / ".tmp") == []
        assert files_under(up.storage / ".multipart") == []
        output = up.server.output()
    assert "Traceback" not in output and cred["secret_access_key"] not in output


def test_listing_1500_keys_in_pages_and_the_admin_reads(db_url, tmp_path):
    """1,500 keys come back in byte order over pages of at most 1000 (continuation
    tokens), common prefixes with a delimiter; the admin bearer lists and reads, never
    writes; ListBuckets shows the bucket. Rate limiting is off here (1,500 PUTs from one
    address are far over the seed's storage rule, 50 a minute; test_rate_limit.py tests
    the limiter, S3 answer included)."""
    with uploads_hub(db_url, tmp_path, RATE_LIMIT_CALLS="0") as up, hub(db_url) as db:
        cred = up.job(db)
        s3 = up.client(cred)
        prefix = cred["prefix"]
        keys = [f"{prefix}samples/{i:04d}.png" for i in range(1500)]
        keys[7] = f"{prefix}samples/with space+plus&amp%.png"
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: s3.put_object(Bucket="outputs", Key=k, Body=k.encode()), keys))
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="outputs", Prefix=prefix))
        assert [p["KeyCount"] for p in pages] == [1000, 500]
        listed = [o["Key"] for p in pages for o in p["Contents"]]
        assert listed == sorted(keys, key=lambda k: k.encode())
        small = list(
            s3.get_paginator("list_objects_v2").paginate(
                Bucket="outputs", Prefix=prefix, PaginationConfig={"PageSize": 333}
            )
        )
        assert len(small) == 5 and sum(p["KeyCount"] for p in small) == 1500
        rolled = s3.list_objects_v2(Bucket="outputs", Prefix=prefix, Delimiter="/")
        assert [c["Prefix"] for c in rolled["CommonPrefixes"]] == [prefix + "samples/"]
        weird = s3.get_object(Bucket="outputs", Key=keys[7])["Body"].read()
        assert weird == keys[7].encode()
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["outputs"]
        for algorithm in ("SHA256", "SHA1", "CRC32", "CRC32C", "CRC64NVME"):  # all verified
            s3.put_object(
                Bucket="outputs",
                Key=f"{prefix}sum-{algorithm}",
                Body=b"sum",
                ChecksumAlgorithm=algorithm,
            )
        s3.put_object(
            Bucket="outputs", Key=prefix + "md5", Body=b"sum", ContentMD5="HWI7iWg/nOTgdN4WdtEkFg=="
        )
        # boto3 presigns with Signature Version 2 unless told; V4 is what is accepted
        v2 = s3.generate_presigned_url("get_object", Params={"Bucket": "outputs", "Key": keys[0]})
        assert "Signature Version 2" in httpx.get(v2).text
        v4 = up.client(cred, signature_version="s3v4")
        presigned = v4.generate_presigned_url(
            "get_object", Params={"Bucket": "outputs", "Key": keys[0]}, ExpiresIn=60
        )
        answer = httpx.get(presigned)
        assert answer.content == keys[0].encode(), (presigned, answer.text)
        forged = presigned.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
        assert httpx.get(forged).status_code == 403

        admin = up.server.get(f"/api/cloud/storage/outputs/{keys[0]}", token=TOKEN)
        assert admin.status_code == 200 and admin.content == keys[0].encode()
        listing = up.server.get("/api/cloud/storage/outputs?list-type=2&max-keys=2", token=TOKEN)
        assert listing.status_code == 200 and listing.text.count("<Key>") == 2
        refused = up.server.request("PUT", f"/api/cloud/storage/outputs/{prefix}x", token=TOKEN)
        assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text
        wrong = up.server.get("/api/cloud/storage", token="not-the-token")
        assert wrong.status_code == 403
        anonymous = up.server.get(f"/api/cloud/storage/outputs/{keys[0]}")
        assert anonymous.status_code == 403 and "<Code>AccessDenied</Code>" in anonymous.text


def test_refusals_with_the_codes_clients_expect(db_url, tmp_path, monkeypatch):
    """Another job's prefix, another bucket, a wrong secret, an unknown key id, clock
    skew, ../ and NUL in keys, a body over the cap, a wrong checksum or MD5 (BadDigest) and
    a finished job:
    each is refused with S3's code, nothing is stored, and 403s are audited."""
    with (
        uploads_hub(db_url, tmp_path, ORCHESTRATOR_STORAGE_MAX_OBJECT_BYTES="65536") as up,
        hub(db_url) as db,
    ):
        mine, theirs = up.job(db), up.job(db, "bob")
        s3 = up.client(mine)
        p = mine["prefix"]
        other = theirs["prefix"] + "stolen.txt"
        assert (
            code_of(lambda: s3.put_object(Bucket="outputs", Key=other, Body=b"x")) == "AccessDenied"
        )
        assert code_of(lambda: s3.get_object(Bucket="outputs", Key=other)) == "AccessDenied"
        assert (
            code_of(lambda: s3.list_objects_v2(Bucket="outputs", Prefix=theirs["prefix"]))
            == "AccessDenied"
        )
        assert code_of(lambda: s3.list_objects_v2(Bucket="outputs")) == "AccessDenied"
        assert (
            code_of(lambda: s3.put_object(Bucket="other", Key=p + "x", Body=b"x")) == "AccessDenied"
        )
        wrong = up.client(mine, secret="A" * 40)
        assert code_of(lambda: wrong.put_object(Bucket="outputs", Key=p + "x", Body=b"x")) == (
            "SignatureDoesNotMatch"
        )
        unknown = up.client(mine, key_id="OHAAAAAAAAAAAAAAAAAA")
        assert code_of(lambda: unknown.put_object(Bucket="outputs", Key=p + "x", Body=b"x")) == (
            "InvalidAccessKeyId"
        )
        for bad in (
            p + "../escape.txt",
            p + "a/../../x",
            "../../etc/passwd",
            p + "nul\0.txt",
            p + "a//b",
        ):
            assert code_of(lambda bad=bad: s3.put_object(Bucket="outputs", Key=bad, Body=b"x")) in (
                "InvalidArgument",
                "AccessDenied",
            ), bad
        too_big = lambda: s3.put_object(Bucket="outputs", Key=p + "big", Body=b"x" * 70_000)  # noqa: E731
        assert code_of(too_big) == "EntityTooLarge"
        wrong_crc = lambda: s3.put_object(  # noqa: E731
            Bucket="outputs", Key=p + "crc.txt", Body=b"payload", ChecksumCRC32="AAAAAA=="
        )
        assert code_of(wrong_crc) == "BadDigest"
        for name, wrong in (("CRC32C", "AAAAAA=="), ("CRC64NVME", "AAAAAAAAAAA=")):
            refused = lambda n=name, w=wrong: s3.put_object(  # noqa: E731
                Bucket="outputs", Key=p + f"{n}.txt", Body=b"payload", **{f"Checksum{n}": w}
            )
            assert code_of(refused) == "BadDigest", name
        wrong_md5 = lambda: s3.put_object(  # noqa: E731
            Bucket="outputs",
            Key=p + "md5.txt",
            Body=b"payload",
            ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==",
        )
        assert code_of(wrong_md5) == "BadDigest"

        skewed = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)

        def late_clock(remove_tzinfo: bool = True) -> dt.datetime:
            return skewed.replace(tzinfo=None) if remove_tzinfo else skewed

        # botocore signs with its own signer, or with awscrt's (a dependency of ours, for
        # the CRC32C/CRC64NVME checksums) when that is installed: both read this clock
        monkeypatch.setattr(botocore.auth, "get_current_datetime", late_clock)
        monkeypatch.setattr(botocore.crt.auth, "get_current_datetime", late_clock)
        late = up.client(mine)
        assert code_of(lambda: late.put_object(Bucket="outputs", Key=p + "late", Body=b"x")) == (
            "RequestTimeTooSkewed"
        )
        monkeypatch.undo()

        s3.put_object(Bucket="outputs", Key=p + "kept.txt", Body=b"kept")
        claimed = db.claim_one()
        assert claimed.job_id == mine["job_id"]
        db.run(job_calls.complete_job(claimed.job_id, claimed.lease_token, {}))
        deadline = time.monotonic() + 15
        refusal: dict[str, Any] | None = None
        while refusal is None:  # the credential cache holds an answer for at most 2 s
            try:
                s3.put_object(Bucket="outputs", Key=p + "after.txt", Body=b"late")
            except ClientError as error:
                refusal = dict(error.response["Error"])
            assert time.monotonic() < deadline, "a completed job's credential kept working"
            time.sleep(0.2)
        assert refusal["Code"] == "AccessDenied" and "is completed" in refusal["Message"]
        stored = [f.name for f in files_under(up.storage)]
        assert "stolen.txt" not in stored and "crc.txt" not in stored and "md5.txt" not in stored
        assert "escape.txt" not in stored and "passwd" not in stored
        assert not (tmp_path / "escape.txt").exists() and not (up.storage / "escape.txt").exists()
        audited = db.one("SELECT count(*) FROM audit_log WHERE event_type = 'upload_rejected'")
        assert audited >= 1
        output = up.server.output()
    assert "Traceback" not in output
    assert mine["secret_access_key"] not in output and theirs["secret_access_key"] not in output


def _signed_put(up: Uploads, cred: dict[str, Any], key: str, body: bytes) -> bytes:
    """The head of a PUT as botocore's own signer signs it (payload hash of ``body``)."""
    url = f"{up.endpoint}/outputs/{key}"
    request = AWSRequest("PUT", url, data=body, headers={"Content-Length": str(len(body))})
    creds = Credentials(cred["access_key_id"], cred["secret_access_key"])
    botocore.auth.S3SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
    path = url.split(str(up.server.port), 1)[1]
    lines = [f"PUT {path} HTTP/1.1", f"Host: 127.0.0.1:{up.server.port}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_client_killed_mid_body_leaves_no_object(db_url, tmp_path):
    """A signed 16 MiB PUT whose client dies after 5 MiB: no object, no index row, no
    temporary file; the server keeps serving and the next complete PUT works. A day-old
    temporary file (a crashed process's) is swept when storage is first used."""
    with uploads_hub(db_url, tmp_path) as up, hub(db_url) as db:
        stale = up.storage / ".tmp" / "upload-left-by-a-crash"
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"partial")
        os.utime(stale, (time.time() - 2 * 86_400, time.time() - 2 * 86_400))
        cred = up.job(db)
        key = cred["prefix"] + "torn.bin"
        body = os.urandom(16 * MiB)
        with socket.create_connection(("127.0.0.1", up.server.port)) as sock:
            sock.sendall(_signed_put(up, cred, key, body))
            sock.sendall(body[: 5 * MiB])
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        deadline = time.monotonic() + 15
        while files_under(up.storage / ".tmp") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert files_under(up.storage / ".tmp") == []
        assert not (up.storage / "outputs" / key).exists()
        assert db.one("SELECT count(*) FROM job_artifacts") == 0
        s3 = up.client(cred)
        assert code_of(lambda: s3.head_object(Bucket="outputs", Key=key)) == "404"
        s3.put_object(Bucket="outputs", Key=key, Body=body[:MiB])
        assert s3.get_object(Bucket="outputs", Key=key)["Body"].read() == body[:MiB]
        assert "Traceback" not in up.server.output()


def test_a_corrupted_trailing_checksum_over_https_is_bad_digest(db_url, tmp_path):
    """boto3 over https streams aws-chunked with a trailing CRC32; the same request with
    one byte of the payload changed in flight is refused (BadDigest), nothing stored."""
    with uploads_hub(db_url, tmp_path, "https") as up, hub(db_url) as db:
        cred = up.job(db)
        s3 = up.client(cred)
        key = cred["prefix"] + "flipped.bin"
        seen: dict[str, Any] = {}

        def corrupt(request: Any, **_: Any) -> None:
            raw = request.body.read() if hasattr(request.body, "read") else bytes(request.body)
            seen["headers"] = {
                k.lower(): v.decode() if isinstance(v, bytes) else v
                for k, v in request.headers.items()
            }
            marker = raw.index(b"\r\n") + 2  # the first data byte of the first chunk
            flipped = raw[:marker] + bytes([raw[marker] ^ 0xFF]) + raw[marker + 1 :]
            request.body = flipped
            request.headers.pop("Transfer-Encoding", None)
            request.headers["Content-Length"] = str(len(flipped))

        s3.meta.events.register("before-send.s3.PutObject", corrupt)
        assert code_of(lambda: s3.put_object(Bucket="outputs", Key=key, Body=b"x" * 4096)) == (
            "BadDigest"
        )
        assert seen["headers"]["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        assert seen["headers"]["x-amz-trailer"] == "x-amz-checksum-crc32"
        s3.meta.events.unregister("before-send.s3.PutObject", corrupt)
        assert not (up.storage / "outputs" / key).exists()
        assert files_under(up.storage / ".tmp") == []
        context = ssl.create_default_context(cafile=str(up.ca_file))
        health = httpx.get(up.server.url + "/health/live", verify=context)
        assert health.status_code == 200


def test_signed_aws_chunked_streams_are_verified_chunk_by_chunk(db_url, tmp_path):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD (what the AWS SDKs for Java/Go send, not boto3):
    chunk signatures chained from the request's are checked as the body streams in; a
    stream whose chunk was altered is refused and stores nothing. Signed here with the
    algorithm of AWS's published example (tests/unit/test_storage_protocol.py holds the
    server's code to that example's signatures)."""
    from orchestrator.server.storage import sigv4

    with uploads_hub(db_url, tmp_path) as up, hub(db_url) as db:
        cred = up.job(db)
        payload = os.urandom(200_000)
        chunks = [payload[:65536], payload[65536:131072], payload[131072:], b""]
        now = dt.datetime.now(dt.UTC)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")

        def put(key: str, corrupt: bool) -> httpx.Response:
            path = f"/api/cloud/storage/outputs/{key}"
            headers = {
                "host": f"127.0.0.1:{up.server.port}",
                "x-amz-date": amz_date,
                "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                "content-encoding": "aws-chunked",
                "x-amz-decoded-content-length": str(len(payload)),
            }
            names = tuple(sorted(headers))
            signed = sigv4.Signed(
                cred["access_key_id"], day, "us-east-1", "s3", names, "", amz_date
            )
            key_bytes = sigv4.signing_key(cred["secret_access_key"], signed)
            canonical = sigv4.canonical_request(
                "PUT", path, "", headers.items(), signed, headers["x-amz-content-sha256"]
            )
            seed = sigv4.sign(key_bytes, sigv4.string_to_sign(signed, canonical))
            body, previous = b"", seed
            for chunk in chunks:
                digest = hashlib.sha256(chunk).hexdigest()
                previous = sigv4.sign(
                    key_bytes, sigv4.chunk_string_to_sign(signed, previous, digest)
                )
                data = bytes([chunk[0] ^ 1]) + chunk[1:] if corrupt and chunk else chunk
                body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + data + b"\r\n"
            headers["authorization"] = (
                f"AWS4-HMAC-SHA256 Credential={cred['access_key_id']}/{signed.scope}, "
                f"SignedHeaders={';'.join(names)}, Signature={seed}"
            )
            return httpx.put(up.server.url + path, content=body, headers=headers, timeout=30)

        good = put(cred["prefix"] + "signed.bin", corrupt=False)
        assert good.status_code == 200, good.text
        assert (up.storage / "outputs" / cred["prefix"] / "signed.bin").read_bytes() == payload
        bad = put(cred["prefix"] + "altered.bin", corrupt=True)
        assert bad.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in bad.text
        assert not (up.storage / "outputs" / cred["prefix"] / "altered.bin").exists()
        assert files_under(up.storage / ".tmp") == []
