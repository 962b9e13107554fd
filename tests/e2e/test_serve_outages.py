"""`orchestrator serve` while things break: the database stops under it, the daemon that
held the duties dies. Health must say so (503) and recover, without a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from tests.support.hubserver import HubServer, clean_env


def wait_for(predicate, timeout: float = 30, every: float = 0.2):
    """Polls ``predicate`` until it returns something true; that value (or the last)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = predicate()
    return value


@pytest.mark.slow
def test_ready_and_full_health_go_503_when_the_database_stops_and_come_back(tmp_path):
    """Stop the (own, embedded) database under a running server: live stays 200, ready
    and full answer 503 naming the database, and both are 200 again once it is back."""
    with tempfile.TemporaryDirectory(prefix="hub-serve-outage-") as tmp:
        data_dir = Path(tmp) / "pgdata"
        server = start_embedded(data_dir)
        url = server.url
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.migrate(conn)
        try:
            with HubServer(tmp_path, "--no-daemon", DATABASE_URL=url) as hub:
                assert hub.get("/health/ready").status_code == 200
                assert hub.get("/health").status_code == 200
                server.stop()
                down = wait_for(lambda: hub.get("/health/ready").status_code == 503)
                assert down
                ready = hub.get("/health/ready")
                body = ready.json()
                assert body["status"] == "not_ready"
                assert body["reasons"][0].startswith("database unreachable: ")
                assert "\n" not in body["detail"]
                full = hub.get("/api/cloud/health")
                assert full.status_code == 503
                database = next(c for c in full.json()["components"] if c["name"] == "database")
                assert database["status"] == "unhealthy"
                assert hub.get("/health/live").status_code == 200
                assert hub.get("/metrics").status_code == 200  # DB families left out, still 200
                server = start_embedded(data_dir)
                assert server.url == url
                assert wait_for(lambda: hub.get("/health/ready").status_code == 200)
                assert wait_for(lambda: hub.get("/health").status_code == 200)
                assert hub.stop() == 0
        finally:
            server.stop()


def test_a_killed_daemon_leaves_its_duty_stale_in_full_health(db_url, tmp_path):
    """An API-only server watches the duties an `orchestrator run` daemon performs; after
    SIGKILL of that daemon, the duty goes stale (unhealthy, 503) in the server's health."""
    config = tmp_path / "hub.yaml"
    config.write_text(
        "background:\n"
        "  worker_reaping: {interval_seconds: 0.3}\n"
        "  queue_processing: {enabled: false}\n"
        "  approval_expiration: {enabled: false}\n"
        "  log_maintenance: {enabled: false}\n"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--config", str(config)],
        cwd=tmp_path,
        env=clean_env(DATABASE_URL=db_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with HubServer(
            tmp_path, "--no-daemon", DATABASE_URL=db_url, ORCHESTRATOR_DUTY_STALE_AFTER="1.5"
        ) as hub:

            def duty() -> dict | None:
                report = hub.get("/health").json()
                return next(
                    (c for c in report["components"] if c["name"] == "duty:worker_reaping"), None
                )

            healthy = wait_for(lambda: (d := duty()) is not None and d["status"] == "healthy")
            assert healthy, hub.get("/health").text
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
            stale = wait_for(lambda: (d := duty()) is not None and d["status"] == "unhealthy")
            assert stale
            report = hub.get("/health")
            assert report.status_code == 503
            component = next(
                c for c in report.json()["components"] if c["name"] == "duty:worker_reaping"
            )
            assert component["message"].startswith("stale: last succeeded ")
            assert "duty:worker_reaping: stale" in report.json()["detail"]
            assert hub.stop() == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
