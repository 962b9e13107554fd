"""The log handler over Supabase REST, against the PostgREST stand-in backed by the real
database (PostgREST itself cannot be installed here)."""

from __future__ import annotations

import logging
import time

import psycopg

from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.rest import RestSink
from tests.support.fake_postgrest import FakePostgrest

KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"


def test_handler_ships_through_rest_and_honours_429_retry_after(db_url):
    """A 429 with Retry-After: 1 delays the retry by at least a second; nothing is lost."""
    with FakePostgrest(db_url, KEY) as fake:
        handler = DatabaseLogHandler(
            sink=lambda: RestSink(fake.url, KEY),
            source_id="rest",
            max_backoff=0.1,
            flush_interval=0.1,
        )
        logger = logging.getLogger("test.rest.handler")
        logger.propagate = False
        logger.addHandler(handler)
        try:
            deadline = time.monotonic() + 10
            while handler.stats()["state"] != "up" and time.monotonic() < deadline:
                time.sleep(0.02)  # the start-up probe must not take the canned 429
            fake.fail_next(429, retry_after="1")
            for i in range(25):
                logger.warning("over rest %d", i)
            assert handler.flush(20)
        finally:
            logger.removeHandler(handler)
            handler.close(timeout=2)
        inserts = [r for r in fake.requests if r.body and r.body.get("logs")]
        assert len(inserts) >= 2
        throttled, retried = inserts[0], inserts[1]
        assert retried.received_at - throttled.received_at >= 1.0
        assert handler.stats()["retries"] >= 1
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM system_logs WHERE source_id = 'rest'"
        ).fetchone() == (25,)
