"""The daemon's duties as the configuration enables them: which run, how often, with
what (the table in :mod:`orchestrator.daemon.tasks`). Kept apart from the manager that
owns connections, leases and the control loop."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator.config import Settings
from orchestrator.daemon import duties, polling
from orchestrator.daemon.config import EnterpriseConfig
from orchestrator.daemon.duties import UploadGrant
from orchestrator.daemon.housekeeping import (
    fold_counters,
    prune_audit,
    prune_rate_limits,
    prune_webhooks,
)
from orchestrator.daemon.loop import Duty
from orchestrator.daemon.periodic import enqueue_due_ticks
from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.providers.base import Provider
from orchestrator.providers.circuit import CircuitBreaker
from orchestrator.providers.registry import polled_providers
from orchestrator.storage.expiry import expire_multipart_uploads

QUEUE = "queue_processing"
POLLING = "job_status_polling"
REMOTE_CANCELS = "remote_cancellation"


def build_duties(
    ex: AsyncpgExecutor,
    cfg: EnterpriseConfig,
    settings: Settings,
    providers_by_name: dict[str, Provider],
    breaker: CircuitBreaker | None,
    with_settings: Callable[[Callable[[], Awaitable[Any]]], Callable[[], Awaitable[Any]]],
) -> list[Duty]:
    """The duties ``cfg`` enables. ``with_settings`` wraps the duties that talk to
    providers so that they run with the providers' current runtime settings."""
    providers = list(providers_by_name.values())
    explicit = cfg.file.background.job_status_polling.enabled
    built: list[Duty] = []
    if cfg.queue_processing_enabled:
        dispatcher = duties.QueueDispatcher(
            ex,
            providers,
            batch=cfg.dispatch_batch,
            breaker=breaker,
            uploads=UploadGrant.of(settings),
        )
        built.append(
            Duty(
                QUEUE,
                cfg.queue_processing_interval,
                with_settings(dispatcher),
                "Error in queue processing",
            )
        )
        if dispatcher.providers:  # jobs at external providers may need cancelling there
            built.append(
                Duty(
                    REMOTE_CANCELS,
                    cfg.queue_processing_interval,
                    with_settings(dispatcher.canceller),
                    "Error in remote cancellation",
                )
            )
    polled = polled_providers(providers_by_name, explicit)
    if cfg.job_polling_enabled and polled:
        concurrency = {n: s.status_concurrency for n, s in cfg.providers.items()}
        poller = polling.JobStatusPoller(ex, polled, concurrency=concurrency, breaker=breaker)
        built.append(
            Duty(
                POLLING,
                cfg.job_polling_interval,
                with_settings(poller),
                "Error in job polling",
            )
        )
    if cfg.approval_expiration_enabled:
        built.append(
            Duty(
                "approval_expiration",
                cfg.approval_expiration_interval,
                functools.partial(duties.expire_approvals, ex),
                "Error in approval expiration",
            )
        )
    if cfg.worker_reaping_enabled:
        built.append(
            Duty(
                "worker_reaping",
                cfg.worker_reaping_interval,
                functools.partial(duties.reap_dead_workers, ex, cfg.worker_stale_after),
                "Error in worker reaping",
            )
        )
    if cfg.periodic_jobs.enabled:
        built.append(
            Duty(
                "periodic_jobs",
                cfg.periodic_jobs.interval_seconds,
                functools.partial(enqueue_due_ticks, ex),
                "Error in periodic jobs",
            )
        )
    if cfg.job_retention.enabled:
        built.append(
            Duty(
                "job_retention",
                cfg.job_retention.interval_seconds,
                functools.partial(duties.prune_jobs, ex, settings.job_retention_days),
                "Error in job retention",
            )
        )
    if cfg.log_maintenance_enabled is not False:
        maintenance = duties.LogMaintenance(
            ex, settings.log_retention_hours, cfg.log_maintenance_enabled
        )
        built.append(
            Duty(
                "log_maintenance",
                cfg.log_maintenance_interval,
                maintenance,
                "Error in log maintenance",
            )
        )
    built.append(
        Duty(
            "audit_retention",
            3600,
            functools.partial(prune_audit, ex, settings.audit_retention_days),
            "Error in audit retention",
        )
    )
    if any(p.dispatched_by_daemon for p in providers):
        built.append(
            Duty(
                "webhook_retention",
                3600,
                functools.partial(prune_webhooks, ex),
                "Error in webhook retention",
            )
        )
    built.append(
        Duty(
            "multipart_expiry",
            3600,
            functools.partial(
                expire_multipart_uploads,
                ex,
                settings.storage_dir,
                settings.storage_multipart_expiry_hours,
            ),
            "Error in multipart upload expiry",
        )
    )
    built.append(
        Duty(
            "rate_limit_prune",
            300,
            functools.partial(prune_rate_limits, ex),
            "Error in rate limit pruning",
        )
    )
    built.append(
        Duty(
            "job_counters",
            60,
            functools.partial(fold_counters, ex),
            "Error in job counters",
        )
    )
    return built
