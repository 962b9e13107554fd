"""Jobs over HTTP against a real ``orchestrator serve``: the same rules, refusals and
results as ``orchestrator jobs`` for the same jobs, every change audited."""

from __future__ import annotations

import json
import re
import socket
import uuid

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
from tests.e2e.test_cli import orchestrator
from tests.e2e.test_serve import one_line_detail
from tests.support.hubserver import TOKEN, HubServer


@pytest.fixture
def hub(db_url, tmp_path):
    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.upsert_hub_user("alice", "acme"))
        executor.run(job_calls.upsert_hub_user("bob", "globex"))
        executor.run(job_calls.upsert_approval_rule("costly", min_estimated_cost=100))
    with HubServer(tmp_path, "--no-daemon", DATABASE_URL=db_url, ORCHESTRATOR_API_TOKEN=TOKEN) as h:
        yield h


def post(hub: HubServer, path: str, body: object = None, **kwargs):
    if body is not None:
        kwargs["json"] = body
    return hub.request("POST", path, token=TOKEN, **kwargs)


def audit_rows(db_url: str, job_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT event_type, action FROM audit_log WHERE target_type = 'job' "
            "AND target_id = %s ORDER BY id",
            [job_id],
        ).fetchall()


def count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_submit_list_page_show_cancel_approve_reject(hub, db_url, tmp_path):
    job = {"user_id": "alice", "job_type": "render", "payload": {"command": "echo hi"}}
    made = post(hub, "/api/cloud/jobs", {**job, "priority": 700})
    assert made.status_code == 201, made.text
    first = made.json()
    assert first["status"] == "queued" and first["priority"] == 700
    assert first["payload"] == {"command": "echo hi"} and first["duplicate"] is False
    assert first["approval"] is None and "upload_progress" in first
    assert [e["event_type"] for e in first["events"]] == ["submitted"]
    assert "lease_token" not in json.dumps(first)

    # idempotency: the same key gives the same job, 200, and no second audit row
    keyed = {**job, "idempotency_key": "k-1"}
    again = [post(hub, "/api/cloud/jobs", keyed) for _ in range(2)]
    assert [r.status_code for r in again] == [201, 200]
    assert again[0].json()["job_id"] == again[1].json()["job_id"] and again[1].json()["duplicate"]

    costly = post(hub, "/api/cloud/jobs", {**job, "user_id": "bob", "estimated_cost": 500})
    assert costly.status_code == 201 and costly.json()["status"] == "awaiting_approval"
    costly_id = costly.json()["job_id"]
    assert costly.json()["approval"]["status"] == "pending"

    # list: filters and keyset pages, newest first
    everything = hub.get("/api/cloud/jobs", token=TOKEN).json()
    ids = [j["job_id"] for j in everything["jobs"]]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True) and everything["more"] is False
    walked: list[str] = []
    after = None
    while True:
        page = hub.get(
            "/api/cloud/jobs",
            token=TOKEN,
            params={"limit": 1, **({"after": after} if after else {})},
        ).json()
        walked += [j["job_id"] for j in page["jobs"]]
        if not page["more"]:
            assert page["next_after"] is None
            break
        after = page["next_after"]
    assert walked == ids
    for params, expected in (
        ({"user": "bob"}, [costly_id]),
        ({"organisation": "globex"}, [costly_id]),
        ({"organization": "acme", "status": "queued"}, ids[1:]),
        ({"type": "render", "status": "awaiting_approval"}, [costly_id]),
        ({"type": "other"}, []),
    ):
        listed = hub.get("/api/cloud/jobs", token=TOKEN, params=params)
        assert [j["job_id"] for j in listed.json()["jobs"]] == expected, params

    # parity with `orchestrator jobs list` and `jobs show` for the same jobs
    cli_list = orchestrator("jobs", "list", cwd=tmp_path, DATABASE_URL=db_url)
    assert cli_list.returncode == 0, cli_list.stderr
    assert re.findall(r"^([0-9a-f]{8}-[0-9a-f-]{27})\s", cli_list.stdout, re.M) == ids
    shown = hub.get(f"/api/cloud/jobs/{costly_id}", token=TOKEN).json()
    cli = orchestrator("jobs", "show", costly_id, "--no-logs", cwd=tmp_path, DATABASE_URL=db_url)
    assert cli.returncode == 0, cli.stderr
    for field in ("status", "user_id", "organization_id", "job_type", "provider", "priority"):
        assert re.search(rf"^{field}\s+{re.escape(str(shown[field]))}\s*$", cli.stdout, re.M), field
    assert f"Events ({len(shown['events'])}):" in cli.stdout
    assert str(shown["approval"]["request_id"]) in cli.stdout

    # approve (self-approval refused: 409, the SQL function's line), then approve as ops
    selfie = post(hub, f"/api/cloud/jobs/{costly_id}/approve", {"by": "bob"})
    assert selfie.status_code == 409 and "self-approval refused" in one_line_detail(selfie)
    approved = post(hub, f"/api/cloud/jobs/{costly_id}/approve", {"by": "ops", "reason": "ok"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "queued"
    assert approved.json()["approval"]["status"] == "approved"
    twice = post(hub, f"/api/cloud/jobs/{costly_id}/approve", {"by": "ops"})
    assert twice.status_code == 409 and "already approved" in one_line_detail(twice)

    # reject a second costly job, with a reason
    other = post(hub, "/api/cloud/jobs", {**job, "estimated_cost": 200}).json()["job_id"]
    rejected = post(hub, f"/api/cloud/jobs/{other}/reject", {"by": "ops", "reason": "too dear"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "cancelled"
    assert rejected.json()["approval"]["note"] == "too dear"
    plain = first["job_id"]
    none = post(hub, f"/api/cloud/jobs/{plain}/reject", {})
    assert none.status_code == 409 and "no approval request" in one_line_detail(none)

    # cancel, then cancel again (409: already cancelled)
    cancelled = post(hub, f"/api/cloud/jobs/{plain}/cancel", {"reason": "not needed"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["events"][-1]["details"] == {
        "cancelled_by": "admin",
        "reason": "not needed",
    }
    again = post(hub, f"/api/cloud/jobs/{plain}/cancel")
    assert again.status_code == 409
    assert one_line_detail(again).endswith("was not cancelled: the job is already cancelled")

    assert audit_rows(db_url, plain) == [("job_submitted", "submit"), ("job_cancelled", "cancel")]
    assert audit_rows(db_url, costly_id) == [
        ("job_submitted", "submit"),
        ("job_approved", "approve"),
    ]
    assert audit_rows(db_url, other)[-1] == ("job_rejected", "reject")
    types = hub.get("/api/audit/types", token=TOKEN).json()
    assert {"job_submitted", "job_cancelled", "job_approved", "job_rejected"} <= set(types)


GOOD = {"user_id": "alice", "job_type": "render", "payload": {"command": "echo hi"}}


BAD_SUBMISSIONS = [
    (b'{"user_id": "alice", "job_type": "render\\u0000x", "payload": {}}', 422, "job_type contains a NUL"),
    (b'{"user_id": "alice", "job_type": "r", "payload": {"command": "\\ud800"}}', 422, "payload.command contains a lone surrogate"),
    (b'{"user_id": "alice", "job_type": "r", "priority": NaN}', 422, "NaN is not a JSON number"),
    (b'{"user_id": "alice", "job_type": "r", "priority": 1e999}', 422, "priority is a number out of range"),
    (b'[1, 2]', 422, "must be a JSON object, got a JSON array"),
    (b'{"user_id": ', 422, "not valid JSON"),
    (b'\xff\xfe', 422, "not UTF-8"),
    (b'', 422, "the request body is empty"),
    (b'[' * 100_000 + b']' * 100_000, 422, "nested too deeply"),
    (json.dumps({**GOOD, "colour": "red"}).encode(), 422, "unknown job key(s): colour; accepted:"),
    (json.dumps({**GOOD, "priority": "high"}).encode(), 422, "priority must be an integer from 0 to 1000"),
    (json.dumps({**GOOD, "user_id": 7}).encode(), 422, "user_id is required"),
    (json.dumps({**GOOD, "user_id": "mallory"}).encode(), 422, "unknown user 'mallory'"),
    (json.dumps({**GOOD, "payload": {"command": "x", "blob": "y" * 1_200_000}}).encode(), 422, "at most 1048576 (1 MiB)"),
    (json.dumps({**GOOD, "payload": {"blob": "y" * 3_000_000}}).encode(), 413, "at most 2097152 are accepted"),
]  # fmt: skip


def test_bad_submissions_are_one_line_and_write_nothing(hub, db_url):
    """NUL, bad Unicode, NaN, huge numbers, wrong types, unknown fields, unknown users,
    oversized jobs and bodies: each one line naming it, nothing written."""
    for body, status, fragment in BAD_SUBMISSIONS:
        refused = post(
            hub, "/api/cloud/jobs", content=body, headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == status, (body[:80], refused.text)
        assert fragment in one_line_detail(refused), body[:80]
    # a client that dies mid-body: nothing written, nothing but a line in the log
    with socket.create_connection(("127.0.0.1", hub.port)) as sock:
        sock.sendall(
            b"POST /api/cloud/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n".encode()
            + b'{"user_id": "alice", "job_type": "render", "payload": {"command": "'
        )
    assert hub.get("/api/cloud/jobs", token=TOKEN).json()["jobs"] == []
    assert count(db_url, "jobs") == 0
    assert count(db_url, "audit_log WHERE target_type = 'job'") == 0
    assert hub.stop() == 0
    assert "Traceback" not in hub.output()


def test_auth_ids_and_decision_bodies(hub, db_url):
    made = post(hub, "/api/cloud/jobs", GOOD).json()["job_id"]
    for method, path in (
        ("GET", "/api/cloud/jobs"),
        ("POST", "/api/cloud/jobs"),
        ("GET", f"/api/cloud/jobs/{made}"),
        ("POST", f"/api/cloud/jobs/{made}/cancel"),
        ("POST", f"/api/cloud/jobs/{made}/approve"),
    ):
        missing = hub.request(method, path, json=GOOD)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        wrong = hub.request(method, path, token="nope", json=GOOD)
        assert wrong.status_code == 401
    assert count(db_url, "jobs") == 1

    unknown = str(uuid.uuid4())
    for method, path in (
        ("GET", f"/api/cloud/jobs/{unknown}"),
        ("POST", f"/api/cloud/jobs/{unknown}/cancel"),
        ("POST", f"/api/cloud/jobs/{unknown}/approve"),
    ):
        answer = hub.request(method, path, token=TOKEN)
        assert answer.status_code == 404 and one_line_detail(answer) == f"unknown job {unknown}"
    bad_id = hub.get("/api/cloud/jobs/not-a-uuid", token=TOKEN)
    assert bad_id.status_code == 422 and "job_id" in one_line_detail(bad_id)

    for params, fragment in (
        ({"status": "done"}, "unknown job status 'done'"),
        ({"limit": 0}, "invalid query parameter limit"),
        ({"after": "x"}, "invalid query parameter after"),
        ({"organization": "a", "organisation": "b"}, "not two different values"),
    ):
        listed = hub.get("/api/cloud/jobs", token=TOKEN, params=params)
        assert listed.status_code == 422 and fragment in one_line_detail(listed), params

    for body, fragment in (
        ({"by": "ops", "why": "x"}, "unknown body field(s): why; accepted: by, reason"),
        ({"by": 5}, "body field by must be a string"),
        ({"by": " "}, "cancelled_by must name who cancels"),
        ({"reason": "x" * 1001}, "reason is 1001 characters; at most 1000 are accepted"),
        ({"by": "o\u0000ps"}, "by contains a NUL"),
    ):
        refused = post(hub, f"/api/cloud/jobs/{made}/cancel", body)
        assert refused.status_code == 422 and fragment in one_line_detail(refused), body
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM jobs").fetchone() == ("queued",)
