"""The daemon's ``periodic_jobs`` duty: each due cron tick submits its job, once.

Every pass lists the due schedules (``func_list_periodic_jobs(due_only)``), computes
each one's next tick after the database's now (croniter), and asks the database to
submit the due tick and move the schedule on (``func_enqueue_periodic_job``), which
happens once per tick however many daemons ask. A daemon that was down for several
ticks submits one job for the schedule, not one per missed tick. A schedule whose
expression no longer parses is logged and left alone.
"""

from __future__ import annotations

import logging

from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.errors import HubError
from orchestrator.periodic import calls
from orchestrator.periodic.cron import next_tick

logger = logging.getLogger("orchestrator.daemon.periodic")


async def enqueue_due_ticks(executor: AsyncCallExecutor) -> int:
    """One pass; returns how many jobs this daemon submitted."""
    due = await executor.run(calls.list_periodic_jobs(due_only=True))
    submitted = 0
    for schedule in due.rows:
        try:
            following = next_tick(schedule.cron, max(due.now, schedule.next_run_at))
        except HubError as error:
            logger.error("Periodic job %s: %s", schedule.name, error)
            continue
        result = await executor.run(
            calls.enqueue_periodic_job(schedule.name, schedule.next_run_at, following)
        )
        if result.submitted:
            submitted += 1
            logger.info(
                "Periodic job %s: submitted job %s for its tick at %s; next at %s",
                schedule.name,
                result.job_id,
                schedule.next_run_at.isoformat(),
                following.isoformat(),
            )
    return submitted
