"""The upload store's SQL (sql/functions/storage/uploads.sql) through the real executor:
credentials follow the job's state, the secret is derived (never stored) and matches
the documented HMAC, listings page in byte order with common prefixes, progress counts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import psycopg
import pytest

from orchestrator.jobs import calls as job_calls
from orchestrator.jobs.errors import JobError, job_errors
from orchestrator.storage import calls
from tests.integration.jobkit import hub


def test_credentials_follow_the_job_and_the_secret_is_derived(db_url):
    with hub(db_url) as h:
        h.user("alice")
        job_id = str(h.submit().job_id)
        first = h.run(calls.issue_upload_credential(job_id))
        again = h.run(calls.issue_upload_credential(job_id))
        assert first == again  # one active credential per job and bucket
        assert first["access_key_id"].startswith("OH") and len(first["access_key_id"]) == 20
        assert first["prefix"] == f"{job_id}/" and first["bucket"] == "outputs"
        key = h.one("SELECT key FROM hub_internal.upload_signing_key")
        mac = hmac.new(bytes(key), first["access_key_id"].encode(), hashlib.sha256).digest()
        assert first["secret_access_key"] == base64.urlsafe_b64encode(mac).decode()[:40]
        # never stored: no column of any table holds it
        stored = h.one("SELECT to_jsonb(c)::text FROM upload_credentials c")
        assert first["secret_access_key"] not in stored
        check = h.run(calls.check_upload_credential(first["access_key_id"]))
        assert check["active"] and check["secret_access_key"] == first["secret_access_key"]
        assert h.run(calls.check_upload_credential("OHAAAAAAAAAAAAAAAAAA")) == {"found": False}

        claimed = h.claim_one()
        assert h.run(calls.check_upload_credential(first["access_key_id"]))["active"]
        h.run(job_calls.complete_job(claimed.job_id, claimed.lease_token, {}))
        ended = h.run(calls.check_upload_credential(first["access_key_id"]))
        assert not ended["active"] and ended["reason"] == "the job is completed"
        with (
            pytest.raises(JobError, match="completed: upload credentials are issued only"),
            job_errors(),
        ):
            h.run(calls.issue_upload_credential(job_id))


def test_the_signing_key_is_out_of_service_role_reach(db_url, pg_server):
    role = f"upload_probe_{uuid.uuid4().hex[:8]}"  # roles are the cluster's: one per run
    try:
        with hub(db_url) as h:
            h.sql(f"CREATE ROLE {role}")
            h.sql(f"GRANT USAGE ON SCHEMA hub_internal TO {role}")
            h.conn.commit()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                h.sql(f"SET ROLE {role}; SELECT key FROM hub_internal.upload_signing_key")
            h.conn.rollback()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                h.sql(f"SET ROLE {role}; SELECT hub_internal.func_upload_secret('x')")
            h.conn.rollback()
            h.sql(f"REVOKE USAGE ON SCHEMA hub_internal FROM {role}")
            h.conn.commit()
    finally:
        with pg_server.admin() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_listing_pages_in_byte_order_with_common_prefixes(db_url):
    with hub(db_url) as h:
        h.user("alice")
        job_id = str(h.submit().job_id)
        keys = [f"{job_id}/a/{i:02d}" for i in range(5)] + [f"{job_id}/b.txt", f"{job_id}/Z"]
        keys += [f"{job_id}/c/x/1", f"{job_id}/c/y"]
        for key in keys:
            h.run(calls.record_artifact("outputs", key, job_id, 10, "e"))
        names: list[str] = []
        after, is_prefix = None, False
        while True:
            page = h.run(
                calls.list_artifacts("outputs", f"{job_id}/", "/", after, is_prefix, max_keys=2)
            )
            names += [e["name"] for e in page["entries"]]
            if not page["truncated"]:
                break
            after, is_prefix = page["entries"][-1]["name"], page["entries"][-1]["is_prefix"]
        p = f"{job_id}/"
        assert names == [p + "Z", p + "a/", p + "b.txt", p + "c/"]
        flat = h.run(calls.list_artifacts("outputs", p, None, None, False, 1000))["entries"]
        assert [e["name"] for e in flat] == sorted(keys, key=lambda k: k.encode())
        progress = h.run(calls.upload_progress(job_id))
        assert progress["objects"] == len(keys) and progress["bytes"] == 10 * len(keys)


def test_multipart_parts_in_any_order_show_in_progress(db_url):
    with hub(db_url) as h:
        h.user("alice")
        job_id = str(h.submit().job_id)
        h.run(calls.start_multipart_upload("u" * 20, job_id, "outputs", f"{job_id}/big"))
        h.run(calls.record_upload_part("u" * 20, 3, 100, "e3"))
        h.run(calls.record_upload_part("u" * 20, 1, 500, "e1"))
        h.run(calls.record_upload_part("u" * 20, 1, 400, "e1b"))  # sent again: replaced
        assert h.run(calls.record_upload_part("v" * 20, 1, 1, "x")) is None
        detail = h.run(job_calls.get_job(job_id))
        flight = detail.upload_progress["in_progress"]
        assert [(f["parts"], f["bytes"]) for f in flight] == [(2, 500)]
        h.run(
            calls.record_artifact(
                "outputs", f"{job_id}/big", job_id, 500, "m-2", upload_id="u" * 20
            )
        )
        progress = h.run(calls.upload_progress(job_id))
        assert progress["in_progress"] == [] and progress["objects"] == 1


def test_cancelled_and_failed_jobs_credentials_stop(db_url):
    with hub(db_url) as h:
        h.user("alice")
        cancelled = str(h.submit().job_id)
        failed = str(h.submit(max_attempts=1).job_id)
        keys = {
            job: h.run(calls.issue_upload_credential(job))["access_key_id"]
            for job in (cancelled, failed)
        }
        h.run(job_calls.cancel_job(cancelled, "alice", "not needed"))
        claimed = h.claim_one()
        assert claimed.job_id == failed
        h.run(job_calls.fail_job(failed, claimed.lease_token, "boom", retryable=False))
        reasons = {
            job: h.run(calls.check_upload_credential(key))["reason"] for job, key in keys.items()
        }
        assert reasons == {cancelled: "the job is cancelled", failed: "the job is failed"}
        revoked_job = str(h.submit().job_id)
        key = h.run(calls.issue_upload_credential(revoked_job))["access_key_id"]
        assert h.run(calls.revoke_upload_credentials(revoked_job)) == {"revoked": 1}
        check = h.run(calls.check_upload_credential(key))
        assert not check["active"] and check["reason"] == "the credential was revoked"
        fresh = h.run(calls.issue_upload_credential(revoked_job))["access_key_id"]
        assert fresh != key and h.run(calls.check_upload_credential(fresh))["active"]
