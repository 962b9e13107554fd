"""`orchestrator serve` caps request bodies (ORCHESTRATOR_MAX_BODY_BYTES): a declared or
streamed body over the cap is 413 with one line, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg

from tests.support.hubserver import TOKEN, HubServer


def test_oversized_bodies_are_413_and_change_nothing(db_url, tmp_path):
    with HubServer(
        tmp_path,
        "--no-daemon",
        DATABASE_URL=db_url,
        ORCHESTRATOR_API_TOKEN=TOKEN,
        ORCHESTRATOR_MAX_BODY_BYTES="2048",
    ) as hub:
        padding = "x" * 3000
        big = json.dumps({"prometheus_enabled": False, "pad": padding}).encode()
        headers = {"Content-Type": "application/json"}
        declared = hub.request(
            "PUT", "/api/cloud/metrics/config", TOKEN, content=big, headers=headers
        )
        assert declared.status_code == 413
        assert declared.json() == {
            "detail": "request body too large: /api/cloud/metrics/config accepts at most 2048 "
            "bytes; send a smaller body (ORCHESTRATOR_MAX_BODY_BYTES sets the default cap)"
        }

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 500):
                yield big[start : start + 500]

        streamed = hub.request(
            "PUT", "/api/cloud/metrics/config", TOKEN, content=chunks(), headers=headers
        )
        assert streamed.status_code == 413 and "at most 2048 bytes" in streamed.json()["detail"]
        assert hub.get("/api/cloud/metrics/config", TOKEN).json()["prometheus_enabled"] is True
        assert hub.stop() == 0
    with psycopg.connect(db_url) as conn:
        changed = conn.execute(
            "SELECT count(*) FROM audit_log WHERE event_type = 'config_changed'"
        ).fetchone()[0]
    assert changed == 0
