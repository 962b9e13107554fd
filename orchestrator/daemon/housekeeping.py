"""Retention of the operations tables the daemon owns: the audit trail
(``func_audit_prune``, ``AUDIT_RETENTION_DAYS``)."""

from __future__ import annotations

import logging

from orchestrator.audit.calls import audit_prune
from orchestrator.db.calls import AsyncCallExecutor

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
