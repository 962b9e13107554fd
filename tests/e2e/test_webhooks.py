"""``POST /api/webhooks/{provider}`` on a real ``orchestrator serve``: a provider stand-in
calls the hub back over HTTP, signed; refusals are one line, audited, and write nothing
else; a replay is applied once, even when two instances receive it at the same moment."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import httpx
import pytest
import yaml

from orchestrator.jobs import calls as job_calls
from tests.integration.jobkit import hub as job_hub
from tests.support.fake_provider import FakeProvider
from tests.support.hubserver import TOKEN, HubServer, metric_value
from tests.support.webhooks import new_secret, signed

OLD, NEW = new_secret(), new_secret()


def write_config(tmp_path, **provider):
    config = {
        "background": {
            "job_status_polling": {"enabled": False},
            "queue_processing": {"interval_seconds": 0.2},
        },
        "providers": {"cloud": {"base_url": "http://127.0.0.1:9", **provider}},
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def dispatched(db_url, n=1):
    """``n`` jobs of provider cloud, claimed and handed over (provider ids remote-i)."""
    ids = []
    with job_hub(db_url) as h:
        h.user("alice")
        for i in range(n):
            job = h.submit("alice", provider="cloud")
            claimed = h.claim_one("provider:cloud", provider="cloud")
            h.run(
                job_calls.record_provider_status(
                    str(claimed.job_id), "queued", f"remote-{i}", {}, claimed.lease_token
                )
            )
            ids.append(str(job.job_id))
    return ids


def counts(db_url):
    with job_hub(db_url) as h:
        return (
            h.one("SELECT count(*) FROM job_events"),
            h.one("SELECT count(*) FROM webhook_deliveries"),
        )


def rejected(server, reason):
    page = server.get("/api/audit?event_type=webhook_rejected&limit=100", token=TOKEN).json()
    return [e for e in page["entries"] if e["details"].get("reason") == reason]


@pytest.fixture
def serving(db_url, tmp_path):
    config = write_config(tmp_path)
    with HubServer(
        tmp_path,
        "--no-daemon",
        "--config",
        config,
        DATABASE_URL=db_url,
        ORCHESTRATOR_API_TOKEN=TOKEN,
        WEBHOOK_SECRET_CLOUD=f"{OLD} {NEW}",
        ORCHESTRATOR_METRICS_DB_CACHE_SECONDS="0",
    ) as server:
        yield server
        assert server.stop() == 0
        output = server.output()
        assert OLD.removeprefix("whsec_") not in output and TOKEN not in output
        assert "Traceback" not in output  # hostile input and a killed client: one-liners


def post(server, body, headers, provider="cloud", **kwargs):
    return server.request(
        "POST", f"/api/webhooks/{provider}", content=body, headers=headers, **kwargs
    )


def test_a_provider_with_a_webhook_completes_jobs_with_polling_off(db_url, tmp_path):
    """The whole loop over HTTP: the daemon submits to the stand-in (webhook_url: auto,
    built from ORCHESTRATOR_PUBLIC_URL), the stand-in calls back signed (running, then
    succeeded), the jobs complete; the first one's slot (user limit 1) is freed by the
    webhook, so the second is dispatched; the provider's status is never polled."""
    secret = new_secret()
    with FakeProvider(webhook_secret=secret) as remote:
        config = write_config(tmp_path, base_url=remote.url, webhook_url="auto")
        server = HubServer(
            tmp_path,
            "--config",
            config,
            DATABASE_URL=db_url,
            ORCHESTRATOR_API_TOKEN=TOKEN,
            WEBHOOK_SECRET_CLOUD=secret,
        )
        server.env["ORCHESTRATOR_PUBLIC_URL"] = server.url
        with job_hub(db_url) as h:
            h.user("alice")
            h.set_limit("user", "alice", 1)
            jobs = [str(h.submit("alice", provider="cloud").job_id) for _ in range(2)]
        with server:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with job_hub(db_url) as h:
                    states = [h.status(j)[0] for j in jobs]
                if states == ["completed", "completed"]:
                    break
                time.sleep(0.1)
            assert states == ["completed", "completed"], server.output()[-3000:]
            assert server.stop() == 0
        posted = [r for r in remote.requests if r.method == "POST"]
        assert posted[0].body["webhook_url"] == f"{server.url}/api/webhooks/cloud"
        assert remote.gets() == []  # polling is off: only webhooks told the hub
        assert remote.webhook_answers == [200, 200, 200, 200]
        with job_hub(db_url) as h:
            assert h.counters()[("user", "alice")] == 0
            assert h.one("SELECT count(*) FROM webhook_deliveries WHERE outcome = 'applied'") == 4


def test_signed_deliveries_apply_once_and_refusals_write_only_their_audit_row(serving, db_url):
    (job,) = dispatched(db_url)
    payload = {"id": "remote-0", "status": "processing", "progress": 0.5}
    body, headers = signed(OLD, payload)  # the secret being rotated out still verifies
    first = post(serving, body, headers)
    assert first.status_code == 200 and first.json()["status"] == "applied", first.text
    assert post(serving, body, headers).json()["status"] == "duplicate"
    before = counts(db_url)

    bad = dict(headers, **{"webhook-id": "msg_other"})  # signature no longer matches
    refused = post(serving, body, bad)
    assert refused.status_code == 401 and refused.json() == {"detail": "invalid webhook signature"}
    stale_body, stale = signed(NEW, payload, age=600)
    late = post(serving, stale_body, stale)
    assert late.status_code == 401 and "300 seconds" in late.json()["detail"]
    unsigned = post(serving, body, {"content-type": "application/json"})
    assert unsigned.status_code == 401 and "webhook-id" in unsigned.json()["detail"]
    unknown = post(serving, *signed(NEW, payload), provider="nobody")
    assert unknown.status_code == 404 and "configured providers: cloud" in unknown.json()["detail"]
    for raw, words in (
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON list"),
        (b'{"id": "remote-0", "status": "exploded"}', "unknown status"),
        (b'{"status": "running"}', "names no job"),
        (b'{"id": "remote-\\u0000", "status": "running"}', "NUL"),
    ):
        answer = post(serving, *signed(NEW, None, raw=raw))
        assert answer.status_code == 422, raw
        assert words in answer.json()["detail"] and "\n" not in answer.json()["detail"]
    huge = b'{"id": "remote-0", "status": "running", "pad": "' + b"x" * (11 << 20) + b'"}'
    assert post(serving, *signed(NEW, None, raw=huge)).status_code == 413

    def chunks():
        for _ in range(11):
            yield b"x" * (1 << 20)

    assert post(serving, chunks(), {"webhook-id": "m"}).status_code == 413
    for raw, words in (
        (b'{"id": "' + b"r" * 300 + b'", "status": "running"}', "at most 255"),
        (b'{"job_id": "not-a-uuid", "status": "running"}', "not a UUID"),
        (b'{"id": "remote-0", "status": "running", "x": "\xff\xfe"}', "not valid JSON"),
    ):
        answer = post(serving, *signed(NEW, None, raw=raw))
        assert answer.status_code == 422 and words in answer.json()["detail"], answer.text
    with socket.create_connection(("127.0.0.1", serving.port)) as cut:  # killed mid-body
        cut.sendall(
            b'POST /api/webhooks/cloud HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{"id"'
        )
    assert serving.get("/health/live").status_code == 200
    assert counts(db_url) == before  # refused: no event, no delivery row

    assert rejected(serving, "bad_signature") and rejected(serving, "timestamp_out_of_tolerance")
    assert rejected(serving, "unknown_provider") and rejected(serving, "malformed")

    nul = post(serving, *signed(NEW, {"id": "remote-0", "status": "queued", "note": "a\u0000b"}))
    assert nul.status_code == 200 and nul.json()["status"] == "applied", nul.text
    done = post(serving, *signed(NEW, {"id": "remote-0", "job_id": job, "status": "succeeded"}))
    assert done.json()["status"] == "applied" and done.json()["provider_status"] == "completed"
    ghost = post(serving, *signed(NEW, {"id": "remote-404", "status": "succeeded"}))
    assert ghost.status_code == 200
    assert ghost.json() == {
        "status": "ignored",
        "reason": "unknown job",
        "delivery_id": ghost.json()["delivery_id"],
    }
    with job_hub(db_url) as h:
        assert h.status(job) == ("completed", "completed")

    with job_hub(db_url) as h:  # a provider that keeps failing: its circuit opens
        for _ in range(5):
            h.one("SELECT func_record_provider_call('cloud', false, 'HTTP 503')")
    applied = serving.request("POST", "/api/cloud/metrics/config/templates/full", token=TOKEN)
    assert applied.status_code == 200
    text = serving.get("/metrics").text
    for outcome, n in (
        ("received", 3),
        ("duplicate", 1),
        ("ignored", 1),
        ("rejected_signature", 3),
    ):
        assert (
            metric_value(text, "orchestrator_webhooks_total", provider="cloud", outcome=outcome)
            == n
        )


def test_the_allowlist_set_over_the_api_refuses_other_addresses(serving, db_url):
    """No allowlist: every address; PUT ["127.0.0.1/32"]: 127.0.0.2 gets 403 and an audit
    row within seconds, 127.0.0.1 still gets through; [] opens it again."""
    dispatched(db_url)
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)

    def from_other():
        body, headers = signed(NEW, {"id": "remote-0", "status": "running"})
        return other.post(serving.url + "/api/webhooks/cloud", content=body, headers=headers)

    assert from_other().status_code == 200
    put = serving.request(
        "PUT",
        "/api/cloud/providers/cloud",
        token=TOKEN,
        json={"webhook_allowed_ips": ["127.0.0.1/32"]},
    )
    assert put.status_code == 200, put.text
    deadline = time.monotonic() + 10
    while (answer := from_other()).status_code != 403 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.status_code == 403 and answer.json() == {"detail": "IP address not in allowlist"}
    row = rejected(serving, "ip_not_allowed")[0]
    assert row["actor_ip"] == "127.0.0.2"
    assert post(serving, *signed(NEW, {"id": "remote-0", "status": "running"})).status_code == 200
    malformed = serving.request(
        "PUT",
        "/api/cloud/providers/cloud",
        token=TOKEN,
        json={"webhook_allowed_ips": ["10.0.0.300/8"]},
    )
    assert malformed.status_code == 422
    assert (
        "'10.0.0.300/8'" in malformed.json()["detail"]
        and "CIDR such as" in malformed.json()["detail"]
    )
    serving.request(
        "PUT", "/api/cloud/providers/cloud", token=TOKEN, json={"webhook_allowed_ips": []}
    )
    deadline = time.monotonic() + 10
    while (answer := from_other()).status_code == 403 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.status_code == 200
    other.close()


def test_the_same_deliveries_at_two_instances_at_once_apply_once(db_url, tmp_path):
    config = write_config(tmp_path)
    env = {"DATABASE_URL": db_url, "WEBHOOK_SECRET_CLOUD": NEW}
    jobs = dispatched(db_url, 10)
    with (
        HubServer(tmp_path, "--no-daemon", "--config", config, **env) as a,
        HubServer(tmp_path, "--no-daemon", "--config", config, **env) as b,
    ):
        outcomes: list[tuple[int, str]] = []
        lock = threading.Lock()

        def send(server, body, headers, i):
            answer = post(server, body, headers)
            with lock:
                outcomes.append((i, answer.json()["status"]))

        threads = []
        for i, job in enumerate(jobs):
            body, headers = signed(NEW, {"id": f"remote-{i}", "job_id": job, "status": "succeeded"})
            threads += [threading.Thread(target=send, args=(s, body, headers, i)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    per_delivery = {i: sorted(s for j, s in outcomes if j == i) for i in range(len(jobs))}
    assert all(v == ["applied", "duplicate"] for v in per_delivery.values()), per_delivery
    with job_hub(db_url) as h:
        finished = Counter(
            h.one(
                "SELECT count(*) FROM job_events WHERE job_id = %s AND event_type = 'completed'",
                [j],
            )
            for j in jobs
        )
    assert finished == {1: len(jobs)}


def test_start_up_refuses_a_malformed_cidr_and_a_missing_secret(db_url, tmp_path):
    bad = write_config(tmp_path, webhook_allowed_ips=["10.0.0.0/8", "192.168.1.0/33"])
    server = HubServer(tmp_path, "--no-daemon", "--config", bad, DATABASE_URL=db_url)
    with pytest.raises(AssertionError):
        server.start()
    out = server.output()
    assert "'192.168.1.0/33'" in out and "CIDR such as" in out and "Traceback" not in out
    nosecret = write_config(tmp_path, webhook_url="https://hub.example/api/webhooks/cloud")
    server = HubServer(tmp_path, "--no-daemon", "--config", nosecret, DATABASE_URL=db_url)
    with pytest.raises(AssertionError):
        server.start()
    out = server.output()
    assert "WEBHOOK_SECRET_CLOUD or CLOUD_WEBHOOK_SECRET" in out and "Traceback" not in out
