"""The client address over real sockets: loopback clients bind 127.0.0.2 and 127.0.0.3
as distinct peers, one of them the trusted proxy. Spoofed headers from an untrusted peer
change nothing; a trusted chain is read right to left; the audit trail records the
resolved address and the socket peer."""

from __future__ import annotations

import httpx
import psycopg

from tests.support.hubserver import TOKEN, HubServer

WRONG = {"Authorization": "Bearer not-the-token"}


def client_from(address: str) -> httpx.Client:
    """An HTTP client whose connections leave from ``address`` (a loopback alias)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_forwarded_headers_are_believed_only_from_trusted_proxies(db_url, tmp_path):
    with HubServer(
        tmp_path,
        "--no-daemon",
        DATABASE_URL=db_url,
        ORCHESTRATOR_API_TOKEN=TOKEN,
        ORCHESTRATOR_TRUSTED_PROXIES="127.0.0.3, 198.51.100.0/24",
    ) as hub:
        url = hub.url + "/api/audit"
        with client_from("127.0.0.2") as spoofer:
            for spoof in (
                {"X-Forwarded-For": "203.0.113.66"},
                {"X-Real-IP": "203.0.113.67"},
                {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
            ):
                assert spoofer.get(url, headers={**WRONG, **spoof}).status_code == 401
        with client_from("127.0.0.3") as proxy:
            chain = {"X-Forwarded-For": "6.6.6.6, 203.0.113.10, 198.51.100.20"}
            assert proxy.get(url, headers={**WRONG, **chain}).status_code == 401
            assert proxy.get(url, headers={**WRONG, "X-Real-IP": "203.0.113.11"}).status_code == 401
            mapped = {"X-Forwarded-For": "::ffff:203.0.113.12"}
            assert proxy.get(url, headers={**WRONG, **mapped}).status_code == 401
            # A malformed hop stops the walk: the client is the proxy itself.
            broken = {"X-Forwarded-For": "203.0.113.13, not-an-ip"}
            assert proxy.get(url, headers={**WRONG, **broken}).status_code == 401
            # Admin with the right token, through the proxy: the query works.
            good = proxy.get(
                url,
                params={"event_type": "auth_failed"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert good.status_code == 200
        assert hub.stop() == 0
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT host(actor_ip), details->>'peer' FROM audit_log "
            "WHERE event_type = 'auth_failed' ORDER BY id"
        ).fetchall()
    # auth_failed is throttled per resolved address: one row each.
    assert rows == [
        ("127.0.0.2", "127.0.0.2"),
        ("203.0.113.10", "127.0.0.3"),
        ("203.0.113.11", "127.0.0.3"),
        ("203.0.113.12", "127.0.0.3"),
        ("127.0.0.3", "127.0.0.3"),
    ]


def test_without_trusted_proxies_every_header_is_ignored(db_url, tmp_path):
    """The default (no trusted proxy): even 127.0.0.1 is not believed."""
    with HubServer(
        tmp_path, "--no-daemon", DATABASE_URL=db_url, ORCHESTRATOR_API_TOKEN=TOKEN
    ) as hub:
        with client_from("127.0.0.1") as local:
            answer = local.get(
                hub.url + "/api/audit", headers={**WRONG, "X-Forwarded-For": "203.0.113.99"}
            )
            assert answer.status_code == 401
        assert hub.stop() == 0
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT host(actor_ip), details->>'peer' FROM audit_log WHERE event_type = 'auth_failed'"
        ).fetchall()
    assert rows == [("127.0.0.1", "127.0.0.1")]


def test_a_malformed_trusted_proxy_setting_stops_serve_with_one_line(db_url, tmp_path):
    hub = HubServer(
        tmp_path, DATABASE_URL=db_url, ORCHESTRATOR_TRUSTED_PROXIES="10.0.0.0/8;10.1.0.0/16"
    )
    hub.start(wait=False)
    assert hub.proc is not None and hub.proc.wait(60) != 0
    last = hub.output().strip().splitlines()[-1]
    assert last == (
        "orchestrator: error: invalid setting ORCHESTRATOR_TRUSTED_PROXIES: entry "
        "'10.0.0.0/8;10.1.0.0/16' is not an IP address or CIDR; expected comma-separated "
        "IPv4/IPv6 addresses or CIDRs, such as 10.0.0.1, 10.0.0.0/8, fd00::/8"
    )
    assert "Traceback" not in hub.output()


def test_the_limiter_keys_on_the_resolved_client_behind_a_trusted_proxy(db_url, tmp_path):
    """Through the trusted proxy (127.0.0.3) two real clients get two windows, and the
    rate_limited row names the client with the proxy as peer; a direct, untrusted peer
    claiming one of those clients in a header gets its own window (its peer's)."""
    with HubServer(
        tmp_path,
        "--no-daemon",
        DATABASE_URL=db_url,
        ORCHESTRATOR_TRUSTED_PROXIES="127.0.0.3",
        RATE_LIMIT_CALLS="2",
        RATE_LIMIT_PERIOD="600",
    ) as hub:
        url = hub.url + "/nowhere"
        with client_from("127.0.0.3") as proxy:
            first = [
                proxy.get(url, headers={"X-Forwarded-For": "203.0.113.1"}).status_code
                for _ in range(3)
            ]
            second = [
                proxy.get(url, headers={"X-Forwarded-For": "203.0.113.2"}).status_code
                for _ in range(2)
            ]
        with client_from("127.0.0.2") as direct:
            spoofed = [
                direct.get(url, headers={"X-Forwarded-For": "203.0.113.2"}).status_code
                for _ in range(3)
            ]
        assert first == [404, 404, 429]
        assert second == [404, 404]
        assert spoofed == [404, 404, 429]
        assert hub.stop() == 0
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT host(actor_ip), details->>'peer' FROM audit_log "
            "WHERE event_type = 'rate_limited' ORDER BY id"
        ).fetchall()
    assert rows == [("203.0.113.1", "127.0.0.3"), ("127.0.0.2", "127.0.0.2")]
