"""The metric categories and templates: the seed's eight plus ``logs``, ``webhooks`` and
``storage``, and its four templates exactly.

Each category lists the metrics it really exports today. The seed listed metrics it
never emitted (``credit_balance_usd``); here a category whose metrics arrive with a later
part of the hub (rate limits, circuit breakers, webhooks, storage) says so and exports
nothing yet, so asking for it is valid and honest.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """One switchable group of metrics."""

    id: str
    name: str
    description: str
    metrics: tuple[str, ...]
    database: bool = False  # some of its metrics come from func_ops_metrics

    def as_json(self) -> dict[str, object]:
        """The shape of ``GET /api/cloud/metrics/config/categories``."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "metrics": list(self.metrics),
        }


CATEGORIES: dict[str, Category] = {
    c.id: c
    for c in (
        Category(
            "jobs",
            "Jobs",
            "Jobs by status, submitted and finished totals, run time, estimated cost, "
            "queue depth and wait.",
            (
                "orchestrator_jobs",
                "orchestrator_jobs_active",
                "orchestrator_jobs_submitted_total",
                "orchestrator_jobs_finished_total",
                "orchestrator_job_run_duration_seconds",
                "orchestrator_job_estimated_cost_total",
                "orchestrator_queue_depth",
                "orchestrator_queue_oldest_wait_seconds",
            ),
            database=True,
        ),
        Category(
            "http",
            "HTTP",
            "Requests of this instance by method, route template and status, and their duration.",
            ("orchestrator_http_requests_total", "orchestrator_http_request_duration_seconds"),
        ),
        Category(
            "rate_limits",
            "Rate limits",
            "Requests refused per rule, decisions this process made alone (database "
            "unreachable), and clients inside a window on any instance.",
            (
                "orchestrator_rate_limit_violations_total",
                "orchestrator_rate_limit_backend_errors_total",
                "orchestrator_rate_limit_fallback_active",
                "orchestrator_rate_limit_tracked_clients",
            ),
        ),
        Category(
            "approvals",
            "Approvals",
            "Approval requests pending and by status.",
            ("orchestrator_approval_requests_pending", "orchestrator_approval_requests"),
            database=True,
        ),
        Category(
            "audit",
            "Audit",
            "Audit events appended by type, throttled ones included.",
            ("orchestrator_audit_events_total",),
            database=True,
        ),
        Category(
            "health",
            "Health",
            "Build, uptime, database latency, component status, and each daemon duty's runs.",
            (
                "orchestrator_build_info",
                "orchestrator_uptime_seconds",
                "orchestrator_health_database_latency_seconds",
                "orchestrator_health_component_status",
                "orchestrator_duty_last_success_timestamp_seconds",
                "orchestrator_duty_runs_total",
                "orchestrator_duty_consecutive_failures",
            ),
            database=True,
        ),
        Category(
            "circuit_breakers",
            "Circuit breakers",
            "Each provider's circuit state (0 closed, 1 half-open, 2 open) and calls by outcome.",
            ("orchestrator_provider_circuit_state", "orchestrator_provider_requests_total"),
        ),
        Category(
            "provider",
            "Providers",
            "Active jobs and their estimated cost per provider.",
            ("orchestrator_provider_active_jobs", "orchestrator_provider_estimated_cost_active"),
            database=True,
        ),
        Category(
            "logs",
            "Logs",
            "This process's log handler (records, queue) and log rows of the last minute and hour.",
            (
                "orchestrator_log_handler_records_total",
                "orchestrator_log_handler_queue_depth",
                "orchestrator_logs_last_minute",
                "orchestrator_logs_last_hour",
            ),
            database=True,
        ),
        Category(
            "webhooks",
            "Webhooks",
            "Provider webhook deliveries received by this process, by provider and outcome.",
            ("orchestrator_webhooks_total",),
        ),
        Category(
            "storage",
            "Storage",
            "No metrics yet: they arrive with the upload endpoint.",
            (),
        ),
    )
}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "minimal": ("jobs",),
    "standard": ("jobs", "http", "health"),
    "security": ("jobs", "http", "rate_limits", "audit", "approvals"),
    "full": tuple(CATEGORIES),
}
TEMPLATE_DESCRIPTIONS = {
    "minimal": "Job counts only.",
    "standard": "Jobs, HTTP and health: the recommended default.",
    "security": "Jobs, HTTP, rate limits, audit and approvals.",
    "full": "Every category.",
}
DEFAULT_TEMPLATE = "standard"
# func_ops_metrics' own parts (the SQL names; categories map onto them).
DB_PARTS = ("jobs", "provider", "health", "approvals", "audit", "logs")


def unknown_categories(ids: list[str]) -> list[str]:
    """The ids that are not categories."""
    return [i for i in ids if i not in CATEGORIES]


def accepted_line() -> str:
    """The accepted categories, for one-line errors."""
    return ", ".join(CATEGORIES)


def template_of(ids: list[str]) -> str | None:
    """The template whose categories are exactly ``ids``, if any."""
    wanted = set(ids)
    return next((name for name, cats in TEMPLATES.items() if set(cats) == wanted), None)
