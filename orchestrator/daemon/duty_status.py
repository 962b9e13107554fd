"""Each duty's outcome, recorded cluster-wide after every run (``func_record_duty_run``).

The control loop tells :class:`DutyStatusRecorder` about every run this daemon made;
``orchestrator serve`` reads the table back for health (a duty whose holder died goes
stale) and metrics, on any instance, including API-only ones. A record that cannot be
written (the database is down, which the duty itself will have reported) is dropped with
a debug line: status is best effort and must never stop a duty.
"""

from __future__ import annotations

import logging

from orchestrator.daemon.calls import record_duty_run
from orchestrator.daemon.loop import Duty, DutyOutcome
from orchestrator.db.calls import AsyncCallExecutor

logger = logging.getLogger("orchestrator.daemon.duty_status")


class DutyStatusRecorder:
    """A :data:`~orchestrator.daemon.loop.RunRecorder` writing to ``daemon_duty_status``."""

    def __init__(self, executor: AsyncCallExecutor, holder: str) -> None:
        self.executor = executor
        self.holder = holder

    async def __call__(
        self, duty: Duty, outcome: DutyOutcome, error: str | None, seconds: float
    ) -> None:
        call = record_duty_run(
            duty.name,
            self.holder,
            ok=outcome == "ran",
            error=error,
            duration_ms=round(seconds * 1000, 3),
            interval_seconds=duty.interval,
        )
        try:
            await self.executor.run(call)
        except Exception as exc:  # the duty's own failure was logged already
            logger.debug("Could not record the run of %s: %s", duty.name, exc)
