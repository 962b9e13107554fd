"""Upkeep of the operations tables: audit retention (``func_audit_prune``,
``AUDIT_RETENTION_DAYS``) and folding the job events into the job counters
(``func_fold_job_counters``), so a scrape has little left to count where no one scrapes
often."""

from __future__ import annotations

import logging

from orchestrator.audit.calls import audit_prune
from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.ops.calls import fold_job_counters
from orchestrator.providers.calls import prune_webhook_deliveries

logger = logging.getLogger("orchestrator.daemon.housekeeping")


async def prune_audit(executor: AsyncCallExecutor, retention_days: int) -> None:
    """Deletes audit entries older than ``retention_days`` (the newest is always kept)."""
    result = await executor.run(audit_prune(retention_days))
    if result.get("deleted"):
        logger.info(
            "Audit retention: removed %d entries older than %d days",
            result["deleted"],
            retention_days,
        )


async def prune_rate_limits(executor: AsyncCallExecutor) -> None:
    """Deletes rate-limit buckets with no hit inside their window."""
    from orchestrator.server.ratelimit.calls import rate_limit_prune

    await executor.run(rate_limit_prune())


FOLDS_PER_RUN = 100  # of up to 100,000 events each: a minute of 160,000 events/s


async def fold_counters(executor: AsyncCallExecutor) -> None:
    """Counts the job events written since the last fold into the totals, all of them
    (one call folds up to 100,000)."""
    for _ in range(FOLDS_PER_RUN):
        if not (await executor.run(fold_job_counters())).get("more"):
            return


async def prune_webhooks(executor: AsyncCallExecutor, retention_days: int = 7) -> None:
    """Forgets provider webhook deliveries older than a week (replays stop long before)."""
    result = await executor.run(prune_webhook_deliveries(retention_days))
    if result.get("deleted"):
        logger.info(
            "Webhook deliveries: removed %d older than %d days", result["deleted"], retention_days
        )
