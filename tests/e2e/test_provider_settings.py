"""``/api/cloud/providers``: runtime overrides of a provider's network and webhook
settings, checked like the YAML, versioned, audited, secrets redacted, and used by the
daemon of another instance within seconds."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme

from tests.e2e.test_webhooks import write_config
from tests.integration.jobkit import hub as job_hub
from tests.support.connect_proxy import ConnectProxy
from tests.support.fake_provider import FakeProvider
from tests.support.hubserver import TOKEN, HubServer

PASSWORD = "pr0xy-pa55-9d1c"  # the tests grep every output for it


@pytest.fixture
def api(db_url, tmp_path):
    config = write_config(tmp_path)
    with HubServer(
        tmp_path,
        "--no-daemon",
        "--config",
        config,
        DATABASE_URL=db_url,
        ORCHESTRATOR_API_TOKEN=TOKEN,
    ) as server:
        yield server
        assert server.stop() == 0
        assert PASSWORD not in server.output() and TOKEN not in server.output()


def put(server, body, name="cloud"):
    return server.request("PUT", f"/api/cloud/providers/{name}", token=TOKEN, json=body)


def test_overrides_are_checked_versioned_redacted_and_audited(api, tmp_path):
    assert api.get("/api/cloud/providers").status_code == 401
    listed = api.get("/api/cloud/providers", token=TOKEN).json()
    assert [p["name"] for p in listed] == ["cloud"]
    assert listed[0]["effective"]["http_timeout"] == 30.0 and listed[0]["version"] == 0
    assert api.get("/api/cloud/providers/nobody", token=TOKEN).status_code == 404

    insecure = put(api, {"ssl_verify": False})
    assert insecure.status_code == 422
    assert "Disabling SSL verification is a security risk." in insecure.json()["detail"]
    acknowledged = put(api, {"ssl_verify": False, "acknowledge_insecure": True})
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["effective"]["ssl_verify"] is False
    assert acknowledged.json()["version"] == 1

    stale = put(api, {"http_timeout": 60, "version": 0})
    assert stale.status_code == 409 and "version 1, not 0" in stale.json()["detail"]
    proxy = f"http://corp:{PASSWORD}@proxy.example:8080"
    stored = put(api, {"http_timeout": 60, "proxy_url": proxy, "version": 1})
    assert stored.status_code == 200, stored.text
    assert stored.json()["effective"]["http_timeout"] == 60
    assert stored.json()["overrides"]["proxy_url"] == "http://***@proxy.example:8080"
    for bad, words in (
        ({"http_timeout": 0}, "http_timeout"),
        ({"http_timeout": 601}, "http_timeout"),
        ({"proxy_url": "socks5://x"}, "proxy_url"),
        ({"ssl_ca_bundle": str(tmp_path / "missing.pem")}, "missing.pem"),
        ({"token_env": "X"}, "token_env"),
        ({}, "nothing to change"),
    ):
        answer = put(api, bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert words in answer.json()["detail"] and "\n" not in answer.json()["detail"]
    got = api.get("/api/cloud/providers/cloud", token=TOKEN)
    assert PASSWORD not in got.text and got.json()["version"] == 2
    audit = api.get("/api/audit?event_type=config_changed&limit=100", token=TOKEN)
    assert audit.json()["entries"] and PASSWORD not in audit.text

    cleared = api.request("DELETE", "/api/cloud/providers/cloud/overrides", token=TOKEN)
    assert cleared.status_code == 200 and cleared.json()["overrides"] == {}
    assert cleared.json()["effective"]["ssl_verify"] is True


def test_a_proxy_set_on_one_instance_is_used_by_the_daemon_of_another(db_url, tmp_path):
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FakeProvider(ssl_context=context) as remote, ConnectProxy() as proxy:
        config = write_config(tmp_path, base_url=remote.url, ssl_ca_bundle=str(bundle))
        env = {
            "DATABASE_URL": db_url,
            "ORCHESTRATOR_API_TOKEN": TOKEN,
            "NO_PROXY": "",
            "no_proxy": "",
        }
        with job_hub(db_url) as h:
            h.user("alice")
            first = str(h.submit("alice", provider="cloud").job_id)
        with (
            HubServer(tmp_path, "--no-daemon", "--config", config, **env) as a,
            HubServer(tmp_path, "--config", config, **env) as b,
        ):
            deadline = time.monotonic() + 30
            while len(remote.jobs) < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(remote.jobs) == 1 and proxy.tunnels == []  # straight to the provider
            assert put(a, {"proxy_url": proxy.url}).status_code == 200
            deadline = time.monotonic() + 30  # the daemon reads overrides every 2 s
            while "network settings changed" not in b.output() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "network settings changed" in b.output()
            with job_hub(db_url) as h:
                second = str(h.submit("alice", provider="cloud").job_id)
            deadline = time.monotonic() + 30
            while len(remote.jobs) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(remote.jobs) == 2
            assert len(proxy.tunnels) >= 1  # the second submit went through the proxy
            tunnels = len(proxy.tunnels)
            with job_hub(db_url) as h:  # an open circuit makes the provider degraded
                for _ in range(5):
                    h.one("SELECT func_record_provider_call('cloud', false, 'HTTP 503')")
            health = a.get("/health?include_providers=true").json()
            (probe,) = [c for c in health["components"] if c["name"] == "provider:cloud"]
            assert probe["status"] == "degraded" and "circuit open" in probe["message"], probe
            assert "answered 404" in probe["message"]  # reached through the proxy, CA trusted
            assert len(proxy.tunnels) == tunnels + 1
    submitted = [r.body["job_id"] for r in remote.requests if r.method == "POST"]
    assert submitted == [first, second]
