"""A full Prometheus scrape of a hub that did some work: what it says equals what the
tables hold, and promtool (Prometheus's own linter) accepts it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.integration.jobkit import hub as job_hub
from tests.support.hubserver import TOKEN, HubServer, metric_value
from tests.support.workload import mixed_workload


def promtool() -> str | None:
    """Debian's promtool: on PATH, at $PROMTOOL, or where .ci/run unpacks it."""
    for candidate in (
        os.environ.get("PROMTOOL"),
        shutil.which("promtool"),
        "/opt/promtool/usr/bin/promtool",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def worked_hub(db_url, tmp_path):
    """A serving hub (full template, no metrics cache) after the mixed workload."""
    with job_hub(db_url) as h:
        mixed_workload(h)
    with HubServer(
        tmp_path,
        "--no-daemon",
        DATABASE_URL=db_url,
        ORCHESTRATOR_API_TOKEN=TOKEN,
        ORCHESTRATOR_METRICS_DB_CACHE_SECONDS="0",
        ENABLE_DB_LOGGING="true",
    ) as server:
        applied = server.request("POST", "/api/cloud/metrics/config/templates/full", token=TOKEN)
        assert applied.status_code == 200, applied.text
        server.get("/health")  # feeds the component-status gauges
        server.get("/no/such/path")  # an <unmatched> route label
        yield server
        assert server.stop() == 0
        assert TOKEN not in server.output()


def test_scraped_database_metrics_equal_direct_sql_counts(worked_hub, db_url):
    """Jobs by status, submitted, finished, run counts, active per provider, queue depth,
    approvals, audit events and log rows: the scrape says what SQL counts."""
    text = worked_hub.get("/metrics").text
    with job_hub(db_url) as h:
        by_status = dict(h.sql("SELECT status, count(*) FROM jobs GROUP BY 1"))
        for status in (
            "awaiting_approval",
            "queued",
            "running",
            "completed",
            "failed",
            "cancelled",
        ):
            assert metric_value(text, "orchestrator_jobs", status=status) == by_status.get(
                status, 0
            ), status
        assert metric_value(text, "orchestrator_jobs_submitted_total") == h.one(
            "SELECT count(*) FROM jobs"
        )
        for status in ("completed", "failed", "cancelled"):
            assert metric_value(
                text, "orchestrator_jobs_finished_total", status=status
            ) == by_status.get(status, 0)
            ran = h.one(
                "SELECT count(*) FROM jobs WHERE status = %s AND started_at IS NOT NULL", [status]
            )
            assert (
                metric_value(text, "orchestrator_job_run_duration_seconds_count", status=status)
                == ran
            )
        assert metric_value(text, "orchestrator_jobs_active") == by_status.get(
            "queued", 0
        ) + by_status.get("running", 0)
        for provider, n in h.sql(
            "SELECT provider, count(*) FROM jobs WHERE status IN ('queued', 'running') GROUP BY 1"
        ):
            assert metric_value(text, "orchestrator_provider_active_jobs", provider=provider) == n
        assert metric_value(text, "orchestrator_queue_depth") == h.one(
            "SELECT count(*) FROM job_queue WHERE status = 'queued'"
        )
        assert metric_value(text, "orchestrator_approval_requests_pending") == h.one(
            "SELECT count(*) FROM approval_requests WHERE status = 'pending'"
        )
        for status, n in h.sql("SELECT status, count(*) FROM approval_requests GROUP BY 1"):
            assert metric_value(text, "orchestrator_approval_requests", status=status) == n
        for event_type, n in h.sql("SELECT event_type, count(*) FROM audit_log GROUP BY 1"):
            assert metric_value(text, "orchestrator_audit_events_total", event_type=event_type) == n
        for level, n in h.sql(
            "SELECT log_level, count(*) FROM system_logs WHERE timestamp >= date_trunc('minute', now()) - interval '60 minutes' "
            "AND timestamp < date_trunc('minute', now()) GROUP BY 1"
        ):
            assert metric_value(text, "orchestrator_logs_last_hour", level=level) == n
    assert (
        metric_value(
            text,
            "orchestrator_http_requests_total",
            method="GET",
            route="<unmatched>",
            status="404",
        )
        == 1
    )
    assert metric_value(text, "orchestrator_health_component_status", component="database") == 2
    assert metric_value(text, "orchestrator_log_handler_queue_depth") is not None
    assert metric_value(text, "process_resident_memory_bytes") is not None


def test_promtool_accepts_a_full_scrape(worked_hub):
    """`promtool check metrics` on the full template after real traffic: exit 0, no lint.
    CI installs promtool (.ci/run); elsewhere the test says it is missing."""
    tool = promtool()
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed: .ci/run should have unpacked it")
        pytest.skip("promtool not installed (apt-get download prometheus; see .ci/run)")
    text = worked_hub.get("/metrics").text
    assert (
        "orchestrator_jobs{" in text and "orchestrator_http_request_duration_seconds_bucket" in text
    )
    checked = subprocess.run(
        [tool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""
