"""What a scrape exports: process metrics of this instance, and database metrics built
from one ``func_ops_metrics`` answer.

prometheus_client writes the exposition (escaping, ``_total``/``_created`` suffixes,
OpenMetrics by ``Accept``); nothing here formats text. The seed's exposition was written
by hand: gauges named ``*_total``, milliseconds, unescaped labels (promtool: exit 3).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from orchestrator.errors import HubError
from orchestrator.logs.handler import SinkLogHandler
from orchestrator.ops.calls import ops_metrics
from orchestrator.server.health import RANK, health_service
from orchestrator.server.metrics.categories import CATEGORIES, DB_PARTS
from orchestrator.server.state import HubState

logger = logging.getLogger("orchestrator.server.metrics")

JOB_STATUSES = ("awaiting_approval", "queued", "running", "completed", "failed", "cancelled")
FINISHED = ("completed", "failed", "cancelled")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Families(Collector):
    """A fixed list of collectors and ready families, as one collector for a scrape."""

    def __init__(self, parts: Iterable[Collector | Metric]) -> None:
        self.parts = list(parts)

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            if isinstance(part, Metric):
                yield part
            else:
                yield from part.collect()


class HealthCollector(Collector):
    """Build, uptime and the last health evaluation of this instance."""

    def __init__(self, hub: HubState) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "orchestrator_build_info", "The hub's version (always 1).", labels=["version"]
        )
        info.add_metric([self.hub.version], 1)
        yield info
        yield GaugeMetricFamily(
            "orchestrator_uptime_seconds", "Seconds since this instance started.", self.hub.uptime
        )
        service = health_service(self.hub)
        probe = service.database.last
        if probe is not None and probe.latency_seconds is not None:
            yield GaugeMetricFamily(
                "orchestrator_health_database_latency_seconds",
                "Time of the last health probe's SELECT 1, connection included.",
                probe.latency_seconds,
            )
        report = service.report.last
        if report is not None:
            status = GaugeMetricFamily(
                "orchestrator_health_component_status",
                "Last health evaluation per component: 0 unhealthy, 1 degraded, 2 healthy.",
                labels=["component"],
            )
            for entry in report["components"]:
                status.add_metric([entry["name"]], RANK[entry["status"]])
            yield status


class LogHandlerCollector(Collector):
    """This process's database log handler: records by outcome, queue depth."""

    def collect(self) -> Iterator[Metric]:
        handler = next(
            (h for h in logging.getLogger().handlers if isinstance(h, SinkLogHandler)), None
        )
        if handler is None:
            return
        stats = handler.stats()
        records = CounterMetricFamily(
            "orchestrator_log_handler_records",
            "Log records of this process by outcome: sent (stored), dropped, rejected.",
            labels=["outcome"],
        )
        records.add_metric(["sent"], float(stats.get("sent", 0)))
        records.add_metric(["dropped"], float(sum(stats.get("dropped", {}).values())))
        rejected = stats.get("rejected", 0)
        records.add_metric(
            ["rejected"], float(rejected if isinstance(rejected, int) else len(rejected))
        )
        yield records
        yield GaugeMetricFamily(
            "orchestrator_log_handler_queue_depth",
            "Log records waiting in this process's buffer.",
            float(stats.get("queue_depth", 0)),
        )


def _labelled(kind: type[Any], name: str, doc: str, label: str, values: dict[str, Any]) -> Any:
    family = kind(name, doc, labels=[label])
    for key in sorted(values):
        family.add_metric([key], float(values[key]))
    return family


def job_families(snap: dict[str, Any]) -> list[Metric]:
    """The ``jobs`` category from the snapshot."""
    by_status = {s: snap["jobs_by_status"].get(s, 0) for s in JOB_STATUSES}
    by_status.update(snap["jobs_by_status"])
    finished = snap["jobs_finished"]
    duration = SummaryMetricFamily(
        "orchestrator_job_run_duration_seconds",
        "Run time of ended jobs that ran, first start to end, by end status.",
        labels=["status"],
    )
    done = CounterMetricFamily(
        "orchestrator_jobs_finished", "Jobs ended, by end status.", labels=["status"]
    )
    for status in FINISHED:
        entry = finished.get(status, {})
        done.add_metric([status], float(entry.get("n", 0)))
        duration.add_metric(
            [status], int(entry.get("run_count", 0)), float(entry.get("run_seconds", 0))
        )
    return [
        _labelled(
            GaugeMetricFamily, "orchestrator_jobs", "Jobs now in each status.", "status", by_status
        ),
        GaugeMetricFamily(
            "orchestrator_jobs_active",
            "Jobs queued or running.",
            float(by_status["queued"] + by_status["running"]),
        ),
        CounterMetricFamily(
            "orchestrator_jobs_submitted", "Jobs submitted.", float(snap["jobs_submitted"])
        ),
        done,
        duration,
        _labelled(
            CounterMetricFamily,
            "orchestrator_job_estimated_cost",
            "Sum of the estimated_cost of completed jobs, by provider.",
            "provider",
            snap["completed_cost_by_provider"],
        ),
        GaugeMetricFamily(
            "orchestrator_queue_depth", "Jobs waiting to be claimed.", float(snap["queue"]["depth"])
        ),
        GaugeMetricFamily(
            "orchestrator_queue_oldest_wait_seconds",
            "How long the oldest waiting job has waited (0 when none waits).",
            float(snap["queue"]["oldest_wait_seconds"]),
        ),
    ]


def provider_families(snap: dict[str, Any]) -> list[Metric]:
    """The ``provider`` category."""
    active = snap["active_by_provider"]
    return [
        _labelled(
            GaugeMetricFamily,
            "orchestrator_provider_active_jobs",
            "Jobs queued or running, by provider.",
            "provider",
            {p: v["jobs"] for p, v in active.items()},
        ),
        _labelled(
            GaugeMetricFamily,
            "orchestrator_provider_estimated_cost_active",
            "Sum of the estimated_cost of queued and running jobs, by provider.",
            "provider",
            {p: v["cost"] for p, v in active.items()},
        ),
    ]


def duty_families(snap: dict[str, Any]) -> list[Metric]:
    """The database half of the ``health`` category: each duty's runs."""
    last = GaugeMetricFamily(
        "orchestrator_duty_last_success_timestamp_seconds",
        "Unix time of the duty's last successful run on any daemon.",
        labels=["duty"],
    )
    runs = CounterMetricFamily(
        "orchestrator_duty_runs",
        "Runs of the duty on any daemon, by outcome.",
        labels=["duty", "outcome"],
    )
    failing = GaugeMetricFamily(
        "orchestrator_duty_consecutive_failures",
        "Failed runs since the last success.",
        labels=["duty"],
    )
    for row in snap["duties"]:
        if row.get("last_success") is not None:
            last.add_metric([row["duty"]], float(row["last_success"]))
        runs.add_metric([row["duty"], "ran"], float(row["runs_total"] - row["failures_total"]))
        runs.add_metric([row["duty"], "failed"], float(row["failures_total"]))
        failing.add_metric([row["duty"]], float(row["consecutive_failures"]))
    return [last, runs, failing]


def approval_families(snap: dict[str, Any]) -> list[Metric]:
    """The ``approvals`` category."""
    return [
        GaugeMetricFamily(
            "orchestrator_approval_requests_pending",
            "Approval requests waiting for a decision.",
            float(snap["approvals_pending"]),
        ),
        _labelled(
            GaugeMetricFamily,
            "orchestrator_approval_requests",
            "Approval requests by status.",
            "status",
            snap["approvals_by_status"],
        ),
    ]


def audit_families(snap: dict[str, Any]) -> list[Metric]:
    """The ``audit`` category."""
    return [
        _labelled(
            CounterMetricFamily,
            "orchestrator_audit_events",
            "Audit events appended, by type (throttled ones included).",
            "event_type",
            snap["audit_events"],
        )
    ]


def log_families(snap: dict[str, Any]) -> list[Metric]:
    """The database half of the ``logs`` category."""
    minute = {lvl: snap["logs_last_minute"].get(lvl, 0) for lvl in LEVELS}
    hour = {lvl: snap["logs_last_hour"].get(lvl, 0) for lvl in LEVELS}
    return [
        _labelled(
            GaugeMetricFamily,
            "orchestrator_logs_last_minute",
            "Log rows stored for the last complete minute, by level (all sources).",
            "level",
            minute,
        ),
        _labelled(
            GaugeMetricFamily,
            "orchestrator_logs_last_hour",
            "Log rows stored for the last 60 complete minutes, by level.",
            "level",
            hour,
        ),
    ]


DB_FAMILIES = {
    "jobs": job_families,
    "provider": provider_families,
    "health": duty_families,
    "approvals": approval_families,
    "audit": audit_families,
    "logs": log_families,
}


class DbMetrics:
    """``func_ops_metrics`` answers, cached ``metrics_db_cache_seconds`` per set of parts,
    at most one call in flight; failures counted per category and the families left out
    (the scrape still answers)."""

    def __init__(self, hub: HubState) -> None:
        self.hub = hub
        self.errors = Counter(
            "orchestrator_metrics_collection_errors",
            "Scrapes whose database metrics of a category could not be read.",
            ["category"],
            registry=None,
        )
        self._cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def snapshot(self, parts: Sequence[str]) -> dict[str, Any] | None:
        """The values of ``parts`` (func_ops_metrics names), or None when unavailable."""
        key = tuple(sorted(parts))
        ttl = self.hub.settings.metrics_db_cache_seconds
        async with self._lock:
            cached = self._cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < ttl:
                return cached[1]
            try:
                snap = await asyncio.wait_for(self.hub.db.run(ops_metrics(key)), 5)
            except (HubError, TimeoutError) as error:
                logger.warning("Database metrics unavailable: %s", error or "timed out")
                for part in key:
                    self.errors.labels(part).inc()
                return None
            self._cache[key] = (time.monotonic(), snap)
            return snap

    async def families(self, categories: Sequence[str]) -> list[Metric]:
        """The database families of ``categories``."""
        parts = [p for p in DB_PARTS if p in categories and CATEGORIES[p].database]
        if not parts:
            return []
        snap = await self.snapshot(parts)
        if snap is None:
            return []
        found: list[Metric] = []
        for part in parts:
            found.extend(DB_FAMILIES[part](snap))
        return found


class ProcessMetrics:
    """The collectors every scrape of this app exports, whatever the categories."""

    def __init__(self, hub: HubState) -> None:
        self.always: list[Collector] = [
            ProcessCollector(registry=None),
            PlatformCollector(registry=None),
            # GCCollector insists on registering somewhere: a registry of its own.
            GCCollector(registry=CollectorRegistry(auto_describe=False)),
        ]
        self.health = HealthCollector(hub)
        self.logs = LogHandlerCollector()
        self.db = DbMetrics(hub)

    async def scrape(self, hub: HubState, categories: Sequence[str]) -> Families:
        """Everything one scrape of ``categories`` exports."""
        parts: list[Collector | Metric] = [*self.always, self.db.errors]
        if "http" in categories:
            parts.extend([hub.http_metrics.requests, hub.http_metrics.duration])
        if "health" in categories:
            parts.append(self.health)
        if "logs" in categories:
            parts.append(self.logs)
        if "webhooks" in categories:
            from orchestrator.server.webhooks import webhook_service

            parts.append(webhook_service(hub).counter)
        if "circuit_breakers" in categories:
            from orchestrator.server.metrics.circuits import circuit_families

            parts.extend(await circuit_families(hub))
        if "rate_limits" in categories:
            from orchestrator.server.ratelimit.metrics import rate_limit_families

            parts.extend(await rate_limit_families(hub))
        parts.extend(await self.db.families(categories))
        return Families(parts)


def process_metrics(hub: HubState) -> ProcessMetrics:
    """The app's collectors, created on first use."""
    found = hub.services.get("metrics")
    if not isinstance(found, ProcessMetrics):
        found = hub.services["metrics"] = ProcessMetrics(hub)
    return found
