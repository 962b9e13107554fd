"""Outage: the server stops mid-stream while the process keeps logging, then comes back.

This module runs its own embedded server (whatever TEST_DATABASE_URL says) because it
stops and starts it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.postgres import PostgresSink


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.slow
def test_nothing_lost_within_capacity_and_drops_counted_beyond():
    """Stop the server, log past the buffer's capacity, restart: the kept records arrive."""
    with tempfile.TemporaryDirectory(prefix="hub-outage-") as tmp:
        data_dir = Path(tmp) / "pgdata"
        server = start_embedded(data_dir)
        url = server.url
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.migrate(conn)
        handler = DatabaseLogHandler(
            sink=lambda: PostgresSink(url),
            source_id="outage",
            capacity=1000,
            max_backoff=0.5,
            flush_interval=0.2,
        )
        logger = logging.getLogger("test.outage")
        logger.propagate = False
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            for i in range(100):
                logger.info("before %d", i)
            assert handler.flush(10)

            server.stop()  # the last handle: pgserver stops the server
            for i in range(700):  # within capacity (80 % of 1000 is kept for INFO)
                logger.info("during %d", i)
            assert _wait(lambda: handler.stats()["state"] == "down", 15)
            for i in range(500):  # 100 more fit (800 = 80 %); 400 are dropped and counted
                logger.info("overflow %d", i)
            for i in range(20):
                logger.error("error during outage %d", i)

            server = start_embedded(data_dir)
            assert server.url == url
            assert handler.flush(30)
            stats = handler.stats()
            with psycopg.connect(url) as conn:
                stored = conn.execute("SELECT count(*) FROM system_logs").fetchone()[0]
                errors = conn.execute(
                    "SELECT count(*) FROM system_logs WHERE log_level = 'ERROR'"
                ).fetchone()[0]
            assert errors == 20
            assert stats["dropped"] == {"buffer_full": 400}
            assert stored == 100 + 700 + 100 + 20
            assert stats["state"] == "up" and stats["retries"] >= 1
        finally:
            logger.removeHandler(handler)
            handler.close(timeout=2)
            server.stop()
