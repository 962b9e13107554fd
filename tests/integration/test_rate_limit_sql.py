"""func_rate_limit_hit is an exact sliding window whoever calls it and however many at
once: only accepted hits are stored, the database clock decides, refusals are audited
once per window and counted every time."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.errors import InputRefused
from orchestrator.server.ratelimit.calls import (
    rate_limit_hit,
    rate_limit_prune,
    rate_limit_tracked,
    rate_limit_usage,
)


def test_concurrent_connections_share_one_exact_limit(db_url):
    """Eight connections (as eight instances) fire 40 hits each on one bucket limited to
    100: exactly 100 are allowed, the row holds exactly 100 hits, every refusal counted."""
    barrier = threading.Barrier(8)
    allowed: list[int] = []
    errors: list[BaseException] = []

    def caller() -> None:
        mine = 0
        try:
            with PsycopgExecutor.connect(db_url) as db:
                barrier.wait()
                for _ in range(40):
                    mine += bool(db.run(rate_limit_hit("t|10.0.0.1", 100, 3600))["allowed"])
        except BaseException as error:  # reported below
            errors.append(error)
        allowed.append(mine)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(allowed) == 100
    with psycopg.connect(db_url) as conn:
        hits, violations = conn.execute(
            "SELECT cardinality(hits), violations FROM rate_limit_buckets WHERE bucket = 't|10.0.0.1'"
        ).fetchone()
    assert (hits, violations) == (100, 220)


def test_window_slides_headers_values_and_rejections_are_not_stored(db_url):
    """3 per 1.5 s: the 4th is refused with retry_after >= 1 and reset at the oldest hit
    plus the window; refusals leave the stored hits alone, and once the window has passed
    the bucket accepts again (a retrying client recovers)."""
    with PsycopgExecutor.connect(db_url) as db:
        first = db.run(rate_limit_hit("w|a", 3, 1.5))
        assert first["allowed"] and first["remaining"] == 2 and first["limit"] == 3
        assert db.run(rate_limit_hit("w|a", 3, 1.5))["remaining"] == 1
        third = db.run(rate_limit_hit("w|a", 3, 1.5))
        assert third["allowed"] and third["remaining"] == 0
        for _ in range(20):
            refused = db.run(rate_limit_hit("w|a", 3, 1.5))
            assert not refused["allowed"] and refused["remaining"] == 0
            assert refused["retry_after"] >= 1 and refused["reset"] >= first["reset"] - 1
        usage = db.run(rate_limit_usage("w|a", 3, 1.5))
        assert usage["count"] == 3 and usage["remaining"] == 0
        assert 0 < usage["reset_in_seconds"] <= 1.5
        deadline = time.monotonic() + 10
        while not db.run(rate_limit_hit("w|a", 3, 1.5))["allowed"]:
            assert time.monotonic() < deadline, "the window never slid"
            time.sleep(0.1)
        assert db.run(rate_limit_usage("w|a", 3, 1.5))["count"] == 1
        # Another bucket is independent.
        assert db.run(rate_limit_hit("w|b", 3, 1.5))["remaining"] == 2


def test_refusals_are_audited_once_per_window_and_counted(db_url):
    """Ten refusals of one bucket in its window write one rate_limited row (with the
    resolved address and the details given) and count ten in audit_event_counts."""
    audit = {
        "actor_ip": "203.0.113.9",
        "target_id": "/api/x",
        "details": {"method": "POST", "rule": "r", "peer": "10.0.0.2"},
        "correlation_id": "cid-1",
        "instance_id": "test:1",
    }
    with PsycopgExecutor.connect(db_url) as db:
        assert db.run(rate_limit_hit("r|203.0.113.9", 1, 600, audit))["allowed"]
        results = [db.run(rate_limit_hit("r|203.0.113.9", 1, 600, audit)) for _ in range(10)]
    assert [r["audited"] for r in results] == [True] + [False] * 9
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT host(actor_ip), target_id, details, correlation_id, instance_id "
            "FROM audit_log WHERE event_type = 'rate_limited'"
        ).fetchall()
        counted = conn.execute(
            "SELECT n FROM audit_event_counts WHERE event_type = 'rate_limited'"
        ).fetchone()[0]
    assert len(rows) == 1
    ip, target, details, cid, instance = rows[0]
    assert (ip, target, cid, instance) == ("203.0.113.9", "/api/x", "cid-1", "test:1")
    assert details["peer"] == "10.0.0.2" and details["limit"] == 1 and details["rule"] == "r"
    assert counted == 10


def test_a_bad_audit_field_does_not_break_the_decision(db_url):
    """A malformed actor_ip in the audit payload: the decision still comes back."""
    with PsycopgExecutor.connect(db_url) as db:
        db.run(rate_limit_hit("bad|x", 1, 60))
        refused = db.run(rate_limit_hit("bad|x", 1, 60, {"actor_ip": "not-an-ip"}))
    assert refused["allowed"] is False and "actor_ip" in refused["audit_error"]


@pytest.mark.parametrize(
    ("bucket", "calls", "window", "words"),
    [
        ("", 1, 60, "bucket must be 1-512 characters"),
        ("x" * 513, 1, 60, "bucket must be 1-512 characters"),
        ("b", 0, 60, "max_requests must be from 1 to 10000"),
        ("b", 10001, 60, "max_requests must be from 1 to 10000"),
        ("b", 1, 0.01, "window_seconds must be from 0.1 to 86400"),
        ("b", 1, 86401, "window_seconds must be from 0.1 to 86400"),
    ],
)
def test_bad_arguments_are_one_line_refusals(db_url, bucket, calls, window, words):
    with PsycopgExecutor.connect(db_url) as db, pytest.raises(InputRefused) as caught:
        db.run(rate_limit_hit(bucket, calls, window))
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_hostile_bucket_text_is_stored_as_data(db_url):
    """Quotes, unicode and control characters in a key are plain data; a NUL byte is
    refused by the driver or the server, never half-stored."""
    weird = "r|'; DROP TABLE rate_limit_buckets; --\u202e\u00e9"
    with PsycopgExecutor.connect(db_url) as db:
        assert db.run(rate_limit_hit(weird, 2, 60))["allowed"]
        assert db.run(rate_limit_usage(weird, 2, 60))["count"] == 1
        with pytest.raises(Exception):  # noqa: B017, PT011 - either layer may refuse it
            db.run(rate_limit_hit("r|\x00", 2, 60))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM rate_limit_buckets").fetchone()[0] == 1


def test_prune_removes_only_idle_buckets_and_tracked_counts_live_ones(db_url):
    with PsycopgExecutor.connect(db_url) as db:
        db.run(rate_limit_hit("p|idle", 5, 0.2))
        db.run(rate_limit_hit("p|live", 5, 600))
        time.sleep(0.5)
        assert db.run(rate_limit_tracked()) == {"tracked_clients": 1}
        assert db.run(rate_limit_prune()) == {"deleted": 1}
        assert db.run(rate_limit_usage("p|live", 5, 600))["count"] == 1
