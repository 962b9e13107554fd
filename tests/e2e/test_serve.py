"""`orchestrator serve` as an operator runs it: a real process, real HTTP, real PostgreSQL.

Each test starts the server on a free loopback port against its own migrated database
(the embedded server, or TEST_DATABASE_URL's), talks to it over sockets, and stops it
with SIGTERM. The admin token is a test secret that must never appear in any output.
"""

from __future__ import annotations

import json
import signal

import psycopg
import pytest

from tests.support.hubserver import TOKEN, HubServer, metric_value


def one_line_detail(response) -> str:
    """The body is exactly {"detail": "<one line>"}; returns the line."""
    body = response.json()
    assert list(body) == ["detail"], body
    assert isinstance(body["detail"], str) and "\n" not in body["detail"] and body["detail"]
    return body["detail"]


def test_health_metrics_and_a_clean_sigterm(db_url, tmp_path):
    """live/ready/full answer 200 on a healthy hub, the daemon's duties show up healthy,
    /metrics serves the standard template, and SIGTERM ends with exit 0, the leases
    released and no secret in the output."""
    with HubServer(tmp_path, DATABASE_URL=db_url, ORCHESTRATOR_API_TOKEN=TOKEN) as hub:
        live = hub.get("/health/live")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        assert hub.get("/api/cloud/health/live").json() == {"status": "ok"}
        assert hub.get("/health/ready").json() == {"status": "ready"}
        assert hub.get("/api/cloud/health/ready").status_code == 200
        full = hub.get("/api/cloud/health")
        assert full.status_code == 200, full.text
        report = full.json()
        assert report["status"] in ("healthy", "degraded")
        assert set(report) >= {
            "status",
            "version",
            "uptime_seconds",
            "timestamp",
            "instance",
            "components",
        }
        names = {c["name"]: c for c in report["components"]}
        assert names["database"]["status"] == "healthy" and "latency_ms" in names["database"]
        assert names["secrets"]["status"] == "healthy"
        assert names["daemon"]["status"] == "healthy"
        assert any(n.startswith("duty:") for n in names)
        scrape = hub.get("/metrics")
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert metric_value(scrape.text, "orchestrator_build_info") == 1.0
        assert metric_value(scrape.text, "orchestrator_jobs", status="queued") == 0.0
        assert "orchestrator_audit_events" not in scrape.text  # not in the standard template
        openmetrics = hub.get(
            "/api/cloud/metrics/prometheus", headers={"Accept": "application/openmetrics-text"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.rstrip().endswith("# EOF")
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT count(*) FROM daemon_leases").fetchone()[0] > 0
        assert hub.stop(signal.SIGTERM) == 0
        output = hub.output()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM daemon_leases").fetchone()[0] == 0
    assert "Traceback" not in output and TOKEN not in output
    assert "Hub stopping" in output


def test_correlation_ids_are_echoed_logged_and_audited(db_url, tmp_path):
    """A sane X-Correlation-ID is echoed and lands in system_logs and audit_log; a
    malformed one is replaced by a new id and the response says why, in one line."""
    with HubServer(
        tmp_path,
        "--no-daemon",
        DATABASE_URL=db_url,
        ORCHESTRATOR_API_TOKEN=TOKEN,
        ENABLE_DB_LOGGING="true",
        DB_LOG_FLUSH_INTERVAL="0.2",
    ) as hub:
        sent = hub.get("/health/live", headers={"X-Correlation-ID": "req-42.a:b_c-d"})
        assert sent.headers["x-correlation-id"] == "req-42.a:b_c-d"
        assert "x-correlation-id-refused" not in sent.headers
        for bad in ("has space", "x" * 129, "ünïcode".encode(), b"tab\tinside", "semi;colon", ""):
            answer = hub.get("/health/live", headers={"X-Correlation-ID": bad})
            assert answer.status_code == 200
            new_id = answer.headers["x-correlation-id"]
            assert new_id != bad and len(new_id) == 36
            refused = answer.headers["x-correlation-id-refused"]
            assert "expected 1-128 characters" in refused and "\n" not in refused
        fresh = hub.get("/health/live")
        assert len(fresh.headers["x-correlation-id"]) == 36
        assert "x-correlation-id-refused" not in fresh.headers
        denied = hub.get(
            "/api/audit", token="wrong-token", headers={"X-Correlation-ID": "corr-audit-1"}
        )
        assert denied.status_code == 401
        assert hub.stop() == 0
        output = hub.output()
    with psycopg.connect(db_url) as conn:
        logged = conn.execute(
            "SELECT log_level, message FROM system_logs WHERE correlation_id = 'corr-audit-1'"
        ).fetchall()
        audited = conn.execute(
            "SELECT event_type, actor_ip::text, target_id FROM audit_log WHERE correlation_id = 'corr-audit-1'"
        ).fetchall()
    assert ("WARNING", "Admin authentication failed from 127.0.0.1 for GET /api/audit") in logged
    assert audited == [("auth_failed", "127.0.0.1/32", "/api/audit")]
    assert TOKEN not in output and "wrong-token" not in output


def test_outbound_provider_calls_carry_the_request_correlation_id(db_url, tmp_path):
    """/health?include_providers=true probes each provider with the request's id."""
    from tests.support.fake_provider import FakeProvider

    with FakeProvider() as provider:
        config = tmp_path / "hub.yaml"
        config.write_text(f"providers:\n  cloud-a:\n    type: http\n    base_url: {provider.url}\n")
        with HubServer(
            tmp_path, "--no-daemon", "--config", str(config), DATABASE_URL=db_url
        ) as hub:
            answer = hub.get(
                "/api/cloud/health?include_providers=true", headers={"X-Correlation-ID": "probe-7"}
            )
            components = {c["name"]: c for c in answer.json()["components"]}
            assert "provider:cloud-a" in components
            assert hub.stop() == 0
        seen = [r.headers.get("x-correlation-id") for r in provider.requests]
    assert "probe-7" in seen


def test_admin_token_rules(db_url, tmp_path):
    """Unset token: 403 saying how to set it. Missing header: 401 + WWW-Authenticate.
    Wrong token: 401 and an auth_failed audit row (throttled per address). Right: 200."""
    with HubServer(tmp_path, "--no-daemon", DATABASE_URL=db_url) as off:
        detail = one_line_detail(off.get("/api/audit", token=TOKEN))
        assert off.get("/api/audit").status_code == 403
        assert "set ORCHESTRATOR_API_TOKEN" in detail
        assert off.stop() == 0
    with HubServer(
        tmp_path, "--no-daemon", DATABASE_URL=db_url, ORCHESTRATOR_API_TOKEN=TOKEN
    ) as hub:
        missing = hub.get("/api/audit")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "missing bearer token" in one_line_detail(missing)
        for _ in range(3):
            wrong = hub.get("/api/cloud/metrics/config", token=TOKEN + "x")
            assert wrong.status_code == 401
            assert "wrong bearer token" in one_line_detail(wrong)
        right = hub.get("/api/audit", token=TOKEN, params={"event_type": "auth_failed"})
        assert right.status_code == 200
        page = right.json()
        assert len(page["entries"]) == 1  # three failures, one row per address per minute
        assert page["entries"][0]["details"]["route"] == "/api/cloud/metrics/config"
        assert hub.get("/api/audit/verify", token=TOKEN).json()["valid"] is True
        counted = metric_value(
            hub.get("/api/cloud/metrics/config/preview?categories=audit", token=TOKEN).text,
            "orchestrator_audit_events_total",
            event_type="auth_failed",
        )
        assert counted == 3.0
        assert hub.stop() == 0
        assert TOKEN not in hub.output()


def test_bad_input_gets_one_line_and_writes_nothing(db_url, tmp_path):
    """Unknown category or template, stale version, malformed parameters, unknown routes:
    the status and one line each, and neither the settings nor the audit trail change."""
    with HubServer(
        tmp_path, "--no-daemon", DATABASE_URL=db_url, ORCHESTRATOR_API_TOKEN=TOKEN
    ) as hub:
        first = hub.request(
            "PUT",
            "/api/cloud/metrics/config",
            token=TOKEN,
            json={"prometheus_categories": ["jobs"]},
        )
        assert first.status_code == 200 and first.json()["version"] == 1
        with psycopg.connect(db_url) as conn:
            before = conn.execute(
                "SELECT (SELECT count(*) FROM audit_log), (SELECT version FROM hub_settings)"
            ).fetchone()
        cases = [
            (
                ("PUT", "/api/cloud/metrics/config"),
                {"json": {"prometheus_categories": ["jobs", "gpu"]}},
                422,
                "unknown metrics category 'gpu'; accepted: jobs, http",
            ),
            (
                ("PUT", "/api/cloud/metrics/config"),
                {"json": {"prometheus_enabled": False, "version": 0}},
                409,
                "metrics config is at version 1, not 0",
            ),
            (
                ("PUT", "/api/cloud/metrics/config"),
                {"json": {"prometheus_enabled": "maybe"}},
                422,
                "invalid body field prometheus_enabled='maybe'",
            ),
            (
                ("PUT", "/api/cloud/metrics/config"),
                {"json": {"surprise": 1}},
                422,
                "invalid body field surprise",
            ),
            (
                ("PUT", "/api/cloud/metrics/config"),
                {"content": b"{not json", "headers": {"content-type": "application/json"}},
                422,
                "not valid JSON",
            ),
            (("PUT", "/api/cloud/metrics/config"), {"json": {}}, 422, "nothing to change"),
            (
                ("POST", "/api/cloud/metrics/config/templates/huge"),
                {},
                404,
                "unknown template 'huge'; accepted: minimal, standard, security, full",
            ),
            (
                ("GET", "/api/cloud/metrics/config/preview?categories=jobs&categories=nope"),
                {},
                422,
                "unknown metrics category 'nope'",
            ),
            (("GET", "/api/audit?limit=0"), {}, 422, "invalid query parameter limit='0'"),
            (("GET", "/api/audit?since=yesterday"), {}, 422, "invalid query parameter since"),
            (
                ("GET", "/api/audit?actor_ip=not-an-ip"),
                {},
                422,
                "actor_ip must be an IPv4 or IPv6 address",
            ),
            (("GET", "/no/such/route"), {}, 404, "no route GET /no/such/route"),
            (("DELETE", "/health/live"), {}, 405, "method DELETE is not allowed on /health/live"),
        ]
        for (method, path), kwargs, status, expected in cases:
            answer = hub.request(method, path, token=TOKEN, **kwargs)
            assert answer.status_code == status, (path, answer.text)
            assert expected in one_line_detail(answer), (path, answer.text)
        with psycopg.connect(db_url) as conn:
            after = conn.execute(
                "SELECT (SELECT count(*) FROM audit_log), (SELECT version FROM hub_settings)"
            ).fetchone()
        assert after == before
        assert hub.stop() == 0


def test_metrics_config_is_shared_and_disabling_answers_404(db_url, tmp_path):
    """Two instances on one database: a template applied on A is what B exports; turned
    off on A, B's scrape answers 404 (not 200 with nothing); each change is audited."""
    env = {"DATABASE_URL": db_url, "ORCHESTRATOR_API_TOKEN": TOKEN}
    with HubServer(tmp_path, **env) as a, HubServer(tmp_path, "--no-daemon", **env) as b:
        applied = a.request("POST", "/api/cloud/metrics/config/templates/security", token=TOKEN)
        assert applied.json()["template"] == "security"
        seen = b.get("/api/cloud/metrics/config", token=TOKEN).json()
        assert seen["prometheus_categories"] == [
            "jobs",
            "http",
            "rate_limits",
            "audit",
            "approvals",
        ]
        assert seen["version"] == applied.json()["version"]
        off = a.request(
            "PUT",
            "/api/cloud/metrics/config",
            token=TOKEN,
            json={"prometheus_enabled": False, "version": seen["version"]},
        )
        assert off.status_code == 200 and off.json()["prometheus_enabled"] is False
        import time

        deadline = time.monotonic() + 10
        while b.get("/metrics").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.2)
        disabled = b.get("/metrics")
        assert disabled.status_code == 404
        assert one_line_detail(disabled) == (
            "Prometheus export is disabled; enable it with PUT /api/cloud/metrics/config"
        )
        assert b.get("/api/cloud/metrics/prometheus").status_code == 404
        changes = b.get("/api/audit", token=TOKEN, params={"event_type": "config_changed"}).json()
        assert [e["details"]["after"].get("prometheus_enabled") for e in changes["entries"]] == [
            False,
            None,
        ]
        assert {e["instance_id"] for e in changes["entries"]} == {
            changes["entries"][0]["instance_id"]
        }
        # Both instances append at once, three client addresses each: still one chain,
        # and the throttle (one row per address per minute) holds across instances.
        import threading

        import httpx

        def hammer(server, source: str) -> None:
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(transport=transport, base_url=server.url) as client:
                for _ in range(5):
                    client.get("/api/audit", headers={"Authorization": "Bearer nope"})

        threads = [
            threading.Thread(target=hammer, args=(server, source))
            for server in (a, b)
            for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        failed = b.get("/api/audit", token=TOKEN, params={"event_type": "auth_failed"}).json()
        assert sorted(e["actor_ip"] for e in failed["entries"]) == [
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.4",
        ]
        preview = a.get("/api/cloud/metrics/config/preview?categories=audit", token=TOKEN).text
        assert (
            metric_value(preview, "orchestrator_audit_events_total", event_type="auth_failed") == 30
        )
        verdict = a.get("/api/audit/verify", token=TOKEN).json()
        assert verdict["valid"] is True and verdict["checked"] == 5
        assert a.stop() == 0 and b.stop() == 0


def test_tls_with_a_certificate(db_url, tmp_path):
    """--ssl-certfile/--ssl-keyfile serve HTTPS; a client trusting the CA gets 200."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    hub = HubServer(
        tmp_path,
        "--no-daemon",
        "--ssl-certfile",
        str(cert_file),
        "--ssl-keyfile",
        str(key_file),
        scheme="https",
        DATABASE_URL=db_url,
    )
    import ssl

    import httpx

    context = ssl.create_default_context(cafile=str(ca_file))
    with hub.start(verify=context):
        answer = httpx.get(hub.url + "/health/ready", verify=context)
        assert answer.status_code == 200 and answer.json() == {"status": "ready"}
        assert hub.stop() == 0


def test_a_database_without_the_schema_is_one_line(empty_db_url, tmp_path):
    """A configured database that was never migrated: one line, exit 1, nothing served."""
    hub = HubServer(tmp_path, DATABASE_URL=empty_db_url)
    hub.start(wait=False)
    assert hub.proc.wait(60) == 1
    lines = [line for line in hub.output().splitlines() if line.strip()]
    assert lines[-1].startswith("orchestrator: error: ")
    assert "schema is missing: run `orchestrator migrate`" in lines[-1]
    assert "Traceback" not in hub.output()


def test_a_secrets_file_others_may_read_is_refused(db_url, tmp_path):
    """The server does not start on a world-readable secrets file: one line, exit 1."""
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"ORCHESTRATOR_API_TOKEN": TOKEN}))
    secrets.chmod(0o644)
    hub = HubServer(tmp_path, DATABASE_URL=db_url, ORCHESTRATOR_SECRETS_FILE=str(secrets))
    hub.start(wait=False)
    assert hub.proc.wait(60) == 1
    assert hub.output().strip().splitlines()[-1] == (
        f"orchestrator: error: refusing secrets file {secrets}: mode 0644 lets other users "
        f"read it; run chmod 600 {secrets}"
    )
    assert TOKEN not in hub.output()


def test_secret_values_appear_in_no_output(db_url, tmp_path):
    """The admin token (from the 0600 secrets file) and another secret of that file are
    found in no response, no log line (stdout or system_logs), no metric, no audit row."""
    other = "hf-file-secret-77e1c0"
    secrets = tmp_path / "private.json"
    secrets.write_text(json.dumps({"ORCHESTRATOR_API_TOKEN": TOKEN, "hf-token": other}))
    secrets.chmod(0o600)
    with HubServer(
        tmp_path,
        DATABASE_URL=db_url,
        ORCHESTRATOR_SECRETS_FILE=str(secrets),
        ENABLE_DB_LOGGING="true",
        ORCHESTRATOR_LOG_LEVEL="DEBUG",
        DB_LOG_LEVEL="DEBUG",
    ) as hub:
        seen = []
        assert (
            hub.request("POST", "/api/cloud/metrics/config/templates/full", token=TOKEN).status_code
            == 200
        )
        for path in (
            "/health",
            "/health?include_providers=true",
            "/health/ready",
            "/metrics",
            "/api/cloud/metrics/config",
            "/api/audit",
            "/api/audit/verify",
            "/docs",
            "/openapi.json",
        ):
            seen.append(hub.get(path, token=TOKEN).text)
        seen.append(hub.get("/api/audit", token=TOKEN + "-wrong").text)
        seen.append(hub.get("/api/audit", token=other).text)
        assert (
            '"secrets","status":"healthy","message":"ORCHESTRATOR_API_TOKEN configured (file)"'
            in seen[0]
        )
        assert hub.stop() == 0
        seen.append(hub.output())
    with psycopg.connect(db_url) as conn:
        seen.append(str(conn.execute("SELECT array_agg(t::text) FROM system_logs t").fetchone()[0]))
        seen.append(str(conn.execute("SELECT array_agg(a::text) FROM audit_log a").fetchone()[0]))
        seen.append(
            str(conn.execute("SELECT array_agg(h::text) FROM hub_settings h").fetchone()[0])
        )
    everything = "\n".join(seen)
    assert "Admin authentication failed" in everything  # the logs were looked at
    assert TOKEN not in everything and other not in everything
