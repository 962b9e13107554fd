"""Rate limiting over real sockets: two `serve` instances on one database share one exact
limit, the seed's headers and 429 body, excluded paths, audit and metrics, and the
fail-open limiter while the database is unreachable."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import psycopg
import pytest

from tests.support.hubserver import TOKEN, HubServer, metric_value
from tests.support.tcprelay import Relay

BODY_429 = {"detail": "Rate limit exceeded. Please try again later."}
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def client_from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def limited_metrics(hub: HubServer) -> str:
    """The rate_limits category of one instance, read by another client address."""
    with client_from("127.0.0.3") as admin:
        answer = admin.get(
            hub.url + "/api/cloud/metrics/config/preview",
            params={"categories": "rate_limits"},
            headers=ADMIN,
        )
    assert answer.status_code == 200, answer.text
    return answer.text


def wait_for_component(hub: HubServer, name: str, status: str) -> dict:
    """Full health's component ``name`` once it has ``status`` (health caches 1 s)."""
    deadline = time.monotonic() + 30
    while True:
        found = next(
            (c for c in hub.get("/api/cloud/health").json()["components"] if c["name"] == name),
            None,
        )
        if found is not None and found["status"] == status:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.3)


def assert_refused(answer: httpx.Response, limit: int) -> None:
    assert answer.status_code == 429
    assert answer.json() == BODY_429
    assert 1 <= int(answer.headers["retry-after"]) <= 600
    assert answer.headers["x-ratelimit-limit"] == str(limit)
    assert answer.headers["x-ratelimit-remaining"] == "0"
    assert int(answer.headers["x-ratelimit-reset"]) > 0


def test_two_instances_share_one_exact_limit(db_url, tmp_path):
    """24 requests at once, split over two instances, from one client that spoofs a new
    X-Forwarded-For each time: exactly 7 pass (the default rule set to 7/600), 17 are
    429 with the seed's body and headers; one rate_limited audit row, 17 counted; the
    violations metrics of the two instances add up to 17; other clients, excluded paths
    and health probes are untouched."""
    env = {
        "DATABASE_URL": db_url,
        "ORCHESTRATOR_API_TOKEN": TOKEN,
        "RATE_LIMIT_CALLS": "7",
        "RATE_LIMIT_PERIOD": "600",
    }
    with HubServer(tmp_path, "--no-daemon", **env) as a, HubServer(tmp_path, **env) as b:
        answers: list[httpx.Response] = []
        barrier = threading.Barrier(8)

        def fire(n: int) -> None:
            with client_from("127.0.0.2") as client:
                barrier.wait()
                for i in range(3):
                    hub = (a, b)[(n + i) % 2]
                    answers.append(
                        client.get(
                            hub.url + "/api/cloud/metrics/config",
                            headers={**ADMIN, "X-Forwarded-For": f"203.0.113.{n * 3 + i}"},
                        )
                    )

        threads = [threading.Thread(target=fire, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(answers) == 24
        passed = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code != 200]
        assert len(passed) == 7 and len(refused) == 17
        for answer in refused:
            assert_refused(answer, 7)
        remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in passed)
        assert remaining == [0, 1, 2, 3, 4, 5, 6]
        assert all(r.headers["x-ratelimit-limit"] == "7" for r in passed)

        with client_from("127.0.0.2") as client:
            # Excluded paths are never limited and carry no rate-limit headers...
            for path in ("/health/live", "/health/ready", "/api/cloud/health/live", "/metrics"):
                answer = client.get(a.url + path)
                assert answer.status_code == 200, (path, answer.text)
                assert "x-ratelimit-limit" not in answer.headers
            # ...but the exclusion is by segment: /healthz is an ordinary (limited) path.
            assert_refused(client.get(b.url + "/healthz"), 7)
        # Another client address has its own window.
        with client_from("127.0.0.3") as other:
            fresh = other.get(a.url + "/api/cloud/metrics/config", headers=ADMIN)
            assert fresh.status_code == 200 and fresh.headers["x-ratelimit-remaining"] == "6"

        violations = sum(
            metric_value(
                limited_metrics(hub), "orchestrator_rate_limit_violations_total", rule="default"
            )
            or 0
            for hub in (a, b)
        )
        assert violations == 18  # the 17, and /healthz
        assert metric_value(limited_metrics(a), "orchestrator_rate_limit_tracked_clients") == 2
        assert a.stop() == 0 and b.stop() == 0
        output = a.output() + b.output()
    assert "Traceback" not in output
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT host(actor_ip), target_id, details FROM audit_log "
            "WHERE event_type = 'rate_limited'"
        ).fetchall()
        counted = conn.execute(
            "SELECT n FROM audit_event_counts WHERE event_type = 'rate_limited'"
        ).fetchone()[0]
    assert len(rows) == 1
    ip, target, details = rows[0]
    assert (ip, target) == ("127.0.0.2", "/api/cloud/metrics/config")
    assert details["rule"] == "default" and details["limit"] == 7 and details["period"] == 600
    assert details["peer"] == "127.0.0.2" and details["method"] == "GET"
    assert counted == 18


def test_the_database_away_fails_open_to_a_per_process_limit(db_url, tmp_path):
    """Cut the database under a running server: requests are still limited (by this
    process, 5/600), the backend-errors counter and the fallback gauge say so, one
    warning line is logged; with the database back, decisions are shared again."""
    with Relay(db_url) as relay:
        env = {
            "DATABASE_URL": relay.url,
            "ORCHESTRATOR_API_TOKEN": TOKEN,
            "RATE_LIMIT_CALLS": "5",
            "RATE_LIMIT_PERIOD": "600",
        }
        with HubServer(tmp_path, "--no-daemon", **env) as hub:
            with client_from("127.0.0.2") as client:
                assert client.get(hub.url + "/nowhere").headers["x-ratelimit-remaining"] == "4"
                relay.cut()
                answers = [client.get(hub.url + "/nowhere") for _ in range(8)]
            # The local window starts empty: 5 more pass (404: no such route), then 429.
            assert [r.status_code for r in answers] == [404] * 5 + [429] * 3
            assert_refused(answers[-1], 5)
            text = limited_metrics(hub)
            assert (metric_value(text, "orchestrator_rate_limit_backend_errors_total") or 0) >= 8
            assert metric_value(text, "orchestrator_rate_limit_fallback_active") == 1
            assert (
                metric_value(text, "orchestrator_rate_limit_violations_total", rule="default") == 3
            )
            limiter = wait_for_component(hub, "rate_limiter", "degraded")
            assert "limits are per instance" in limiter["message"]
            relay.restore()
            with client_from("127.0.0.2") as client:
                back = client.get(hub.url + "/nowhere")
            # The shared window still holds the one hit taken before the cut.
            assert back.status_code == 404 and back.headers["x-ratelimit-remaining"] == "3"
            assert (
                metric_value(limited_metrics(hub), "orchestrator_rate_limit_fallback_active") == 0
            )
            wait_for_component(hub, "rate_limiter", "healthy")
            assert hub.stop() == 0
            output = hub.output()
    assert output.count("Rate limiting falls back to this process's own windows") == 1
    assert "Traceback" not in output


def test_hostile_requests_are_limited_like_any_other(db_url, tmp_path):
    """NUL bytes and bad encodings in the path, a huge User-Agent, a client killed
    mid-request: answers stay one line, the limiter keeps counting, no traceback."""
    env = {"DATABASE_URL": db_url, "RATE_LIMIT_CALLS": "3", "RATE_LIMIT_PERIOD": "600"}
    with HubServer(tmp_path, "--no-daemon", **env) as hub:
        host, port = hub.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /x%00y HTTP/1.1\r\nHost: x\r\n")  # killed before the end
        with client_from("127.0.0.2") as client:
            answers = [
                client.get(hub.url + "/a%00b%ff%fe"),
                client.get(hub.url + "/\u202e", headers={"User-Agent": b"\xe9\xff" * 3000}),
                client.post(hub.url + "/api/cloud/jobs/%00/cancel"),
                client.get(hub.url + "/x"),
                client.get(hub.url + "/a%00b", headers={"User-Agent": "z" * 10000}),
            ]
        # The cancel route exists (the jobs API): an admin route with no token set is 403.
        assert [a.status_code for a in answers[:4]] == [404, 404, 403, 404]
        for answer in answers[:4]:
            assert "\n" not in answer.json()["detail"]
        assert answers[3].headers["x-ratelimit-remaining"] == "0"
        # The POST counted against jobs_cancel, the other three against the default (3).
        assert answers[2].headers["x-ratelimit-limit"] == "30"
        assert_refused(answers[4], 3)
        assert hub.stop() == 0
        output = hub.output()
    assert "Traceback" not in output and "falls back" not in output
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT target_id, length(details->>'user_agent') FROM audit_log "
            "WHERE event_type = 'rate_limited'"
        ).fetchone()
    assert row == ("/a\ufffdb", 256)


def test_rate_limit_calls_zero_switches_it_off(db_url, tmp_path):
    with HubServer(tmp_path, "--no-daemon", DATABASE_URL=db_url, RATE_LIMIT_CALLS="0") as hub:
        answers = [hub.get("/nowhere") for _ in range(5)]
        assert all(r.status_code == 404 for r in answers)
        assert all("x-ratelimit-limit" not in r.headers for r in answers)
        assert hub.stop() == 0


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        (
            "RATE_LIMIT_CALLS",
            "lots",
            "invalid setting RATE_LIMIT_CALLS='lots': expected an integer from 0 "
            "(rate limiting off) to 10000 (requests per period)",
        ),
        (
            "RATE_LIMIT_PERIOD",
            "0",
            "invalid setting RATE_LIMIT_PERIOD='0': expected a number of seconds from 0.1 to 86400",
        ),
        (
            "ORCHESTRATOR_MAX_BODY_BYTES",
            "-5",
            "invalid setting ORCHESTRATOR_MAX_BODY_BYTES='-5': expected an integer from 1024 "
            "to 1099511627776 (bytes)",
        ),
    ],
)
def test_bad_settings_stop_serve_with_one_line(db_url, tmp_path, name, value, line):
    hub = HubServer(tmp_path, DATABASE_URL=db_url, **{name: value})
    hub.start(wait=False)
    assert hub.proc is not None and hub.proc.wait(60) != 0
    assert hub.output().strip().splitlines()[-1] == f"orchestrator: error: {line}"
    assert "Traceback" not in hub.output()


def test_a_refused_request_with_a_body_does_not_break_its_connection(db_url, tmp_path):
    """The limiter answers without reading the body: it closes such a connection, so the
    next request a keep-alive client sends is answered (429 again), not read from the
    middle of the unread body (which uvicorn answered with a bare 400)."""
    env = {"DATABASE_URL": db_url, "RATE_LIMIT_CALLS": "1", "RATE_LIMIT_PERIOD": "600"}
    with HubServer(tmp_path, "--no-daemon", **env) as hub, client_from("127.0.0.2") as client:
        body = b'{"padding": "' + b"x" * 200_000 + b'"}'
        answers = [client.post(hub.url + "/nowhere", content=body) for _ in range(3)]
        assert answers[0].status_code == 404
        for refused in answers[1:]:
            assert_refused(refused, 1)
            assert refused.headers["connection"] == "close"
        calm = client.get(hub.url + "/nowhere")  # no body: the connection may stay open
        assert_refused(calm, 1)
        assert "connection" not in calm.headers or calm.headers["connection"] != "close"
        assert hub.stop() == 0


def test_rules_from_the_config_file_come_before_the_built_in_ones(db_url, tmp_path):
    """`http.rate_limit` in the YAML file: a team's rule (3 per 600 s on /nowhere, GET
    only) limits its path with its own numbers while other paths keep the default;
    a client in `exempt_cidrs` is never limited."""
    config = tmp_path / "hub.yaml"
    config.write_text(
        "http:\n"
        "  rate_limit:\n"
        "    rules:\n"
        "      - {id: nowhere, pattern: '^/nowhere$', calls: 3, period: 600, methods: [GET]}\n"
        "    exempt_cidrs: ['127.0.0.3/32']\n"
    )
    env = {"DATABASE_URL": db_url, "RATE_LIMIT_CALLS": "50", "RATE_LIMIT_PERIOD": "600"}
    with HubServer(tmp_path, "--no-daemon", "--config", str(config), **env) as hub:
        with client_from("127.0.0.2") as client:
            answers = [client.get(hub.url + "/nowhere") for _ in range(5)]
            other = client.get(hub.url + "/elsewhere")
        assert [r.status_code for r in answers] == [404, 404, 404, 429, 429]
        assert_refused(answers[-1], 3)
        assert other.status_code == 404 and other.headers["x-ratelimit-limit"] == "50"
        with client_from("127.0.0.3") as exempt:
            free = [exempt.get(hub.url + "/nowhere") for _ in range(5)]
        assert [r.status_code for r in free] == [404] * 5
        assert all("x-ratelimit-limit" not in r.headers for r in free)


@pytest.mark.parametrize(
    ("yaml", "line"),
    [
        (
            "http: {rate_limit: {rules: [{pattern: '^/x', calls: 0, period: 60}]}}",
            "rate limit rule ^/x: calls=0, expected 1 to 10000",
        ),
        (
            "http: {rate_limit: {rules: [{pattern: '(', calls: 5, period: 60}]}}",
            "rate limit rule (: pattern '(' is not a regular expression",
        ),
        (
            "http: {rate_limit: {exempt_cidrs: ['10.0.0.0/33']}}",
            "invalid setting exempt_cidrs",
        ),
        (
            "http: {rate_limit: {ipv6_prefix: 200}}",
            "http.rate_limit.ipv6_prefix",
        ),
    ],
)
def test_a_bad_rate_limit_section_stops_serve_with_one_line(db_url, tmp_path, yaml, line):
    config = tmp_path / "hub.yaml"
    config.write_text(yaml + "\n")
    hub = HubServer(tmp_path, "--config", str(config), DATABASE_URL=db_url)
    hub.start(wait=False)
    assert hub.proc is not None and hub.proc.wait(60) != 0
    last = hub.output().strip().splitlines()[-1]
    assert last.startswith("orchestrator: error: ") and line in last, last
    assert "Traceback" not in hub.output()
