"""Which rule limits a request, what is never limited, and how a client is keyed."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError
from orchestrator.server.ratelimit.rules import (
    HUB_RULES,
    build_rules,
    client_key,
    first_match,
    is_excluded,
    parse_rule,
)

RULES = build_rules(100, 60)


@pytest.mark.parametrize(
    ("method", "path", "rule"),
    [
        ("POST", "/api/cloud/jobs", "jobs_submit"),
        ("GET", "/api/cloud/jobs", "default"),
        ("POST", "/api/cloud/jobs/abc/cancel", "jobs_cancel"),
        ("POST", "/api/cloud/jobs/a/b/cancel", "default"),
        ("POST", "/api/webhooks/replicate", "webhooks"),
        ("PUT", "/api/cloud/storage/outputs/job/a.bin", "storage"),
        ("GET", "/api/cloud/storage", "storage"),
        ("GET", "/api/cloud/storagex", "default"),
        ("POST", "/api/auth/login", "auth_login"),
        ("GET", "/anything", "default"),
    ],
)
def test_first_matching_rule(method, path, rule):
    assert first_match(RULES, path, method).id == rule


@pytest.mark.parametrize(
    ("method", "path", "excluded"),
    [
        ("GET", "/health", True),
        ("GET", "/health/ready", True),
        ("GET", "/healthz", False),
        ("GET", "/api/cloud/health/live", True),
        ("GET", "/metrics", True),
        ("GET", "/api/cloud/metrics/prometheus", True),
        ("GET", "/api/cloud/metrics/config", False),
        ("GET", "/api/cloud/providers/replicate", True),
        ("PUT", "/api/cloud/providers/replicate", False),
        ("GET", "/api/events/stream", True),
        ("GET", "/docs", True),
        ("GET", "/openapi.json", True),
    ],
)
def test_exclusions_are_segment_prefixes(method, path, excluded):
    assert is_excluded(path, method) is excluded


def test_upload_parts_are_not_counted():
    storage = next(r for r in HUB_RULES if r.id == "storage")
    assert not storage.counts(b"partNumber=3&uploadId=abc")
    assert storage.counts(b"uploads")
    assert storage.counts(b"partNumber=3")
    assert first_match(RULES, "/x", "GET").counts(b"partNumber=1&uploadId=2")


def test_team_rules_come_first_in_the_seed_shape():
    rules = build_rules(100, 60, [(r"^/api/cloud/jobs$", 2, 300, ["POST"])])
    assert first_match(rules, "/api/cloud/jobs", "POST").calls == 2
    assert first_match(rules, "/api/cloud/jobs", "GET").id == "default"


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (("(", 1, 60, None), "is not a regular expression"),
        (("^/x", 0, 60, None), "calls=0, expected 1 to 10000"),
        (("^/x", 1, 0, None), "period=0.0, expected 0.1 to 86400 seconds"),
        (("^/x", 1, 60, ["FETCH"]), "unknown method(s) FETCH"),
        ("^/x", "expected (pattern, calls, period, methods)"),
    ],
)
def test_bad_rules_are_one_line(item, words):
    with pytest.raises(ConfigError) as caught:
        parse_rule(item, 0)
    assert words in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        (None, "unknown"),
        ("garbage", "unknown"),
    ],
)
def test_client_keys(address, key):
    assert client_key(address) == key
