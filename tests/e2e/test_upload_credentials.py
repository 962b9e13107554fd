"""Job credentials as jobs receive them: a local command job uploads with nothing but
the environment the worker hands it (boto3 reads AWS_* itself), and an HTTP provider's
submit body carries an ``upload`` object; both stop working once the job has ended."""

from __future__ import annotations

import asyncio
import sys
import time

import boto3
from botocore.exceptions import ClientError

from orchestrator.config import load_settings
from orchestrator.daemon.tasks import BackgroundTaskManager
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as jobs
from orchestrator.storage import calls
from tests.e2e.uploads_support import hub, uploads_hub
from tests.integration.test_daemon import config, wait_for
from tests.integration.test_worker_runtime import run_worker
from tests.support.fake_provider import FakeProvider

JOB = (
    "import os, boto3; s3 = boto3.client('s3'); "
    "s3.put_object(Bucket=os.environ['ORCHESTRATOR_UPLOAD_BUCKET'], "
    "Key=os.environ['ORCHESTRATOR_UPLOAD_PREFIX'] + 'result.txt', Body=b'made by the job'); "
    "print('uploaded', os.environ['AWS_ENDPOINT_URL_S3'])"
)


def test_a_local_job_uploads_with_the_environment_it_is_handed(db_url, tmp_path):
    with uploads_hub(db_url, tmp_path) as up, hub(db_url) as db:
        db.user("alice")
        job_id = str(db.submit("alice", payload={"command": f'{sys.executable} -c "{JOB}"'}).job_id)
        counts = run_worker(db_url, upload_endpoint=up.endpoint)
        assert counts.completed == 1, db.sql("SELECT error FROM jobs")
        stored = up.storage / "outputs" / job_id / "result.txt"
        assert stored.read_bytes() == b"made by the job"
        credential = db.one(
            "SELECT access_key_id FROM upload_credentials WHERE job_id = %s", [job_id]
        )
        check = db.run(calls.check_upload_credential(credential))
        assert check["active"] is False and check["reason"] == "the job is completed"
        s3 = boto3.client(
            "s3",
            endpoint_url=up.endpoint,
            aws_access_key_id=credential,
            aws_secret_access_key=check["secret_access_key"],
            region_name="us-east-1",
        )
        deadline = time.monotonic() + 15  # the server caches an answer for at most 2 s
        code = None
        while code is None and time.monotonic() < deadline:
            try:
                s3.put_object(Bucket="outputs", Key=f"{job_id}/again.txt", Body=b"x")
                time.sleep(0.2)
            except ClientError as error:
                code = error.response["Error"]["Code"]
        assert code == "AccessDenied"
        progress = db.run(jobs.get_job(job_id)).upload_progress
        # result.txt, and again.txt if it landed inside the cache's 2 s window
        assert progress["objects"] in (1, 2) and progress["bytes"] in (15, 16)


def test_an_http_provider_receives_upload_credentials_in_the_submit_body(db_url, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_PUBLIC_URL", "https://hub.example.org/")
    with FakeProvider() as remote:
        daemon = BackgroundTaskManager(
            config(remote), load_settings(env_file=None), dsn=db_url, holder="uploads-test"
        )
        with PsycopgExecutor.connect(db_url) as ex:
            ex.run(jobs.upsert_hub_user("u1", "o1"))
            job_id = ex.run(jobs.submit_job("u1", "render", {"n": 1}, provider="cloud")).job_id

        async def scenario() -> None:
            await daemon.start()
            try:
                await wait_for(lambda: len(remote.jobs) == 1)
            finally:
                await daemon.stop()

        asyncio.run(scenario())
        upload = remote.requests[0].body["upload"]
    assert upload["endpoint_url"] == "https://hub.example.org/api/cloud/storage"
    assert upload["prefix"] == f"{job_id}/" and upload["bucket"] == "outputs"
    assert upload["access_key_id"].startswith("OH") and len(upload["secret_access_key"]) == 40
    with PsycopgExecutor.connect(db_url) as ex:
        check = ex.run(calls.check_upload_credential(upload["access_key_id"]))
    assert check["active"] and check["secret_access_key"] == upload["secret_access_key"]
