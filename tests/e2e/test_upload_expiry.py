"""Abandoned multipart uploads expire, and a multipart upload's total is capped: the real
boto3 client against a real `orchestrator serve`, the daemon's real duty run once, time
advanced by moving the rows' timestamps back in SQL."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from orchestrator.config import load_settings
from orchestrator.daemon.config import EnterpriseConfig, parse_config
from orchestrator.daemon.tasks import BackgroundTaskManager
from tests.e2e.uploads_support import Uploads, files_under, hub, uploads_hub

MiB = 1024 * 1024


def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def run_duties(db_url: str, storage: Path) -> dict[str, Any]:
    """One cycle of every duty of a daemon whose storage directory is ``storage``."""
    settings = load_settings(env_file=None).model_copy(update={"storage_dir": storage})
    daemon = BackgroundTaskManager(
        EnterpriseConfig(parse_config("")), settings, dsn=db_url, holder="expiry-test"
    )

    async def once() -> dict[str, Any]:
        try:
            return dict(await daemon.run_once())
        finally:
            await daemon.stop()

    return asyncio.run(once())


def start_with_part(s3: Any, key: str, body: bytes = b"part one") -> tuple[str, str]:
    upload_id = s3.create_multipart_upload(Bucket="outputs", Key=key)["UploadId"]
    etag = s3.upload_part(Bucket="outputs", Key=key, UploadId=upload_id, PartNumber=1, Body=body)[
        "ETag"
    ]
    return upload_id, etag


def test_abandoned_uploads_expire_and_nothing_else_goes(db_url, tmp_path):
    """Old and quiet, or of a job that ended an hour ago: rows and parts go, and Complete
    or UploadPart then answer NoSuchUpload. A fresh upload, an old one with a part begun
    a minute ago, a completed object, a symlink out of the directory: untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    with uploads_hub(db_url, tmp_path) as up, hub(db_url) as db:
        cred = up.job(db)
        s3 = up.client(cred)
        prefix = cred["prefix"]
        s3.put_object(Bucket="outputs", Key=prefix + "done.txt", Body=b"finished")
        done_id, done_etag = start_with_part(s3, prefix + "done.bin", b"whole")
        s3.complete_multipart_upload(
            Bucket="outputs",
            Key=prefix + "done.bin",
            UploadId=done_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": done_etag}]},
        )
        old_id, old_etag = start_with_part(s3, prefix + "old.bin")
        busy_id, _ = start_with_part(s3, prefix + "busy.bin")
        fresh_id, _ = start_with_part(s3, prefix + "fresh.bin")
        ended = up.job(db)
        ended_s3 = up.client(ended)
        ended_id, _ = start_with_part(ended_s3, ended["prefix"] + "late.bin")

        # Time passes: old began 8 days ago and has been quiet 2 hours; busy began 8
        # days ago but a part began a minute ago; the second job ended 2 hours ago.
        db.sql(
            "UPDATE multipart_uploads SET started_at = now() - interval '8 days', "
            "updated_at = now() - interval '2 hours' WHERE upload_id = %s",
            (old_id,),
        )
        db.sql(
            "UPDATE multipart_uploads SET started_at = now() - interval '8 days', "
            "updated_at = now() - interval '1 minute' WHERE upload_id = %s",
            (busy_id,),
        )
        db.sql(
            "UPDATE multipart_uploads SET updated_at = now() - interval '2 hours' "
            "WHERE upload_id = %s",
            (ended_id,),
        )
        db.sql(
            "UPDATE jobs SET status = 'completed', finished_at = now() - interval '2 hours' "
            "WHERE job_id = %s",
            (ended["job_id"],),
        )
        parts = up.storage / ".multipart"
        # Left behind by a crash: a part directory no row knows, quiet for two hours; a
        # day-old temporary file; and a symlink named like an upload id leading outside.
        orphan = parts / ("O" * 32)
        orphan.mkdir()
        (orphan / "1").write_bytes(b"orphan")
        stale = up.storage / ".tmp" / "upload-stale"
        stale.parent.mkdir(exist_ok=True)
        stale.write_bytes(b"stale")
        two_days_ago = time.time() - 2 * 86_400
        for path in (orphan, stale):
            os.utime(path, (two_days_ago, two_days_ago))
        (parts / ("L" * 32)).symlink_to(outside, target_is_directory=True)
        os.utime(parts / ("L" * 32), (two_days_ago, two_days_ago), follow_symlinks=False)

        outcomes = run_duties(db_url, up.storage)
        assert outcomes["multipart_expiry"] == "ran"

        left = {r[0] for r in db.sql("SELECT upload_id FROM multipart_uploads")}
        assert left == {busy_id, fresh_id}
        assert not (parts / old_id).exists() and not (parts / ended_id).exists()
        assert not orphan.exists() and not stale.exists()
        assert (parts / busy_id / "1").read_bytes() == b"part one"
        assert (parts / fresh_id / "1").read_bytes() == b"part one"
        assert (outside / "precious").read_bytes() == b"keep me"
        assert (parts / ("L" * 32)).is_symlink()
        assert s3.get_object(Bucket="outputs", Key=prefix + "done.txt")["Body"].read() == (
            b"finished"
        )
        assert s3.get_object(Bucket="outputs", Key=prefix + "done.bin")["Body"].read() == b"whole"

        complete = {
            "Bucket": "outputs",
            "Key": prefix + "old.bin",
            "UploadId": old_id,
            "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": old_etag}]},
        }
        assert code_of(lambda: s3.complete_multipart_upload(**complete)) == "NoSuchUpload"
        assert (
            code_of(
                lambda: s3.upload_part(
                    Bucket="outputs",
                    Key=prefix + "old.bin",
                    UploadId=old_id,
                    PartNumber=2,
                    Body=b"too late",
                )
            )
            == "NoSuchUpload"
        )
        assert not (parts / old_id).exists()
        assert (
            db.one("SELECT count(*) FROM job_artifacts WHERE key = %s", (prefix + "old.bin",)) == 0
        )
        # A part begun marks the upload active: fresh's row was touched by its UploadPart.
        progress = db.one(
            "SELECT updated_at > now() - interval '5 minutes' FROM multipart_uploads "
            "WHERE upload_id = %s",
            (fresh_id,),
        )
        assert progress is True
        assert files_under(up.storage / ".tmp") == []


def test_a_part_past_the_upload_cap_is_entity_too_large(db_url, tmp_path):
    """With a 12 MiB cap: two 5 MiB parts pass, a third 5 MiB part is refused with
    EntityTooLarge and leaves nothing, a part sent again counts once, a 2 MiB last part
    fits and the upload completes at exactly the cap."""
    cap = 12 * MiB
    with (
        uploads_hub(db_url, tmp_path, ORCHESTRATOR_STORAGE_MAX_UPLOAD_BYTES=str(cap)) as up,
        hub(db_url) as db,
    ):
        cred = up.job(db)
        s3 = up.client(cred)
        key = cred["prefix"] + "capped.bin"
        upload_id = s3.create_multipart_upload(Bucket="outputs", Key=key)["UploadId"]
        blocks = {n: os.urandom(5 * MiB) for n in (1, 2, 3)}

        def part(number: int, body: bytes) -> str:
            return str(
                s3.upload_part(
                    Bucket="outputs", Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )["ETag"]
            )

        etags = {1: part(1, blocks[1]), 2: part(2, blocks[2])}
        with pytest.raises(ClientError) as caught:
            part(3, blocks[3])
        error = caught.value.response
        assert error["Error"]["Code"] == "EntityTooLarge"
        assert "ORCHESTRATOR_STORAGE_MAX_UPLOAD_BYTES" in error["Error"]["Message"]
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert not (up.storage / ".multipart" / upload_id / "3").exists()
        assert files_under(up.storage / ".tmp") == []
        row = db.one("SELECT bytes FROM multipart_uploads WHERE upload_id = %s", (upload_id,))
        assert row == 10 * MiB

        etags[2] = part(2, blocks[2])  # replaces part 2: the total stays 10 MiB
        tail = os.urandom(2 * MiB)
        etags[3] = part(3, tail)
        s3.complete_multipart_upload(
            Bucket="outputs",
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]},
        )
        got = s3.get_object(Bucket="outputs", Key=key)["Body"].read()
        assert got == blocks[1] + blocks[2] + tail and len(got) == cap

        # The room left is what counts: one byte more than it is refused.
        second = s3.create_multipart_upload(Bucket="outputs", Key=key + ".2")["UploadId"]
        s3.upload_part(
            Bucket="outputs", Key=key + ".2", UploadId=second, PartNumber=1, Body=blocks[1]
        )
        assert (
            code_of(
                lambda: s3.upload_part(
                    Bucket="outputs",
                    Key=key + ".2",
                    UploadId=second,
                    PartNumber=2,
                    Body=os.urandom(cap - 5 * MiB + 1),
                )
            )
            == "EntityTooLarge"
        )
        # Parts sent in parallel each see the total as it was when they began; Complete
        # sums again. Two parts that together pass the cap (as such a race would leave
        # them, made here by editing the recorded sizes) are refused, nothing written.
        etag_a = part_of(s3, key + ".2", second, 2, blocks[2])
        db.sql(
            "UPDATE multipart_uploads SET parts = jsonb_set(parts, '{2,size}', to_jsonb(%s::bigint)) "
            "WHERE upload_id = %s",
            (cap - 5 * MiB + 1, second),
        )
        assert (
            code_of(
                lambda: s3.complete_multipart_upload(
                    Bucket="outputs",
                    Key=key + ".2",
                    UploadId=second,
                    MultipartUpload={
                        "Parts": [
                            {"PartNumber": 1, "ETag": etags[1]},
                            {"PartNumber": 2, "ETag": etag_a},
                        ]
                    },
                )
            )
            == "EntityTooLarge"
        )
        assert not (up.storage / "outputs" / (key + ".2")).exists()
        assert files_under(up.storage / ".tmp") == []


def part_of(s3: Any, key: str, upload_id: str, number: int, body: bytes) -> str:
    return str(
        s3.upload_part(Bucket="outputs", Key=key, UploadId=upload_id, PartNumber=number, Body=body)[
            "ETag"
        ]
    )


def _signed_part_head(
    up: Uploads, cred: dict[str, Any], key: str, query: str, body: bytes
) -> bytes:
    """The head of an UploadPart as botocore's signer signs it (payload hash of ``body``)."""
    url = f"{up.endpoint}/outputs/{key}?{query}"
    request = AWSRequest("PUT", url, data=body, headers={"Content-Length": str(len(body))})
    creds = Credentials(cred["access_key_id"], cred["secret_access_key"])
    botocore.auth.S3SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
    path = url.split(str(up.server.port), 1)[1]
    lines = [f"PUT {path} HTTP/1.1", f"Host: 127.0.0.1:{up.server.port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_part_streaming_while_the_duty_runs_is_not_removed(db_url, tmp_path):
    """An upload begun 8 days ago and quiet for 2 hours gets a new part that is still
    streaming when the duty runs: the part's start marked the upload active, so the duty
    leaves it, the part lands, and the upload completes."""
    with uploads_hub(db_url, tmp_path) as up, hub(db_url) as db:
        cred = up.job(db)
        s3 = up.client(cred)
        key = cred["prefix"] + "slow.bin"
        first = os.urandom(5 * MiB)
        upload_id, etag1 = start_with_part(s3, key, first)
        db.sql(
            "UPDATE multipart_uploads SET started_at = now() - interval '8 days', "
            "updated_at = now() - interval '2 hours' WHERE upload_id = %s",
            (upload_id,),
        )
        body = os.urandom(2 * MiB)
        head = _signed_part_head(up, cred, key, f"partNumber=2&uploadId={upload_id}", body)
        with socket.create_connection(("127.0.0.1", up.server.port)) as sock:
            sock.sendall(head + body[:MiB])
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not db.one(
                "SELECT updated_at > now() - interval '5 minutes' FROM multipart_uploads "
                "WHERE upload_id = %s",
                (upload_id,),
            ):
                time.sleep(0.05)
            assert run_duties(db_url, up.storage)["multipart_expiry"] == "ran"
            assert (
                db.one("SELECT count(*) FROM multipart_uploads WHERE upload_id = %s", (upload_id,))
                == 1
            )
            sock.sendall(body[MiB:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer.decode(errors="replace")[-400:]
        etag2 = answer.split(b"etag: ", 1)[1].split(b"\r\n", 1)[0].decode()
        s3.complete_multipart_upload(
            Bucket="outputs",
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]
            },
        )
        assert s3.get_object(Bucket="outputs", Key=key)["Body"].read() == first + body
