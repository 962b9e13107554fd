"""The daemon's control loop: numbered cycles, each running the duties that are due.

A cycle starts when some duty is due (its interval passed, or a NOTIFY asked for it),
runs every due duty at once under its lease (:mod:`~orchestrator.daemon.leader`), and
ends when they all have finished. The cycle number is set with
:func:`~orchestrator.logs.context.set_cycle_number`, so every log record of cycle N,
from any duty, carries ``cycle_number`` N into ``system_logs``.

Duties are isolated: one that raises logs its own error message (the seed's, such as
"Error in job polling") and the others run on, in this cycle and the next. Every run this
daemon makes ends in :meth:`ControlLoop._run_duty`, which tells ``on_run`` (the
cluster-wide duty status of :mod:`~orchestrator.daemon.duty_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.daemon.leader import DutyLeases, LeaseLost
from orchestrator.errors import HubError, first_line
from orchestrator.logs.context import set_cycle_number

logger = logging.getLogger("orchestrator.daemon.loop")

DutyOutcome = Literal["ran", "held elsewhere", "failed"]
# Told after every run this daemon made (not when another held the lease): the duty, its
# outcome, the error line of a failure and the run's seconds; must not raise.
RunRecorder = Callable[["Duty", DutyOutcome, str | None, float], Awaitable[None]]

LEASE_TTL = 20
"""Seconds a duty's lease lasts without renewal, whatever the duty's interval: the
leader renews every lease every ``LEASE_TTL / 4`` s between runs too, and the other
daemons try to take each one as often, so a dead leader's duties are taken over at
most ``LEASE_TTL + LEASE_TTL / 4`` = 25 s after its last renewal (approval expiry,
every 5 min, waited up to 5.5 min before)."""


@dataclass(eq=False)
class Duty:
    """One periodic job of the daemon.

    ``error_message`` is logged at ERROR when a run raises. ``lease_ttl`` (seconds)
    defaults to :data:`LEASE_TTL`; the loop's keeper renews it between runs.
    """

    name: str
    interval: float
    action: Callable[[], Awaitable[object]]
    error_message: str
    lease_ttl: int | None = None
    next_due: float = field(default=0.0)

    @property
    def ttl(self) -> int:
        """The lease TTL in whole seconds."""
        return self.lease_ttl or LEASE_TTL


class ControlLoop:
    """Runs duties in numbered cycles until stopped; see the module docstring."""

    def __init__(
        self,
        duties: Sequence[Duty],
        leases: DutyLeases | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_run: RunRecorder | None = None,
    ) -> None:
        self.duties = list(duties)
        self.on_run = on_run
        self.leases = leases
        self.clock = clock
        self.cycle = 0
        self.wake = asyncio.Event()
        self.outcomes: dict[str, DutyOutcome] = {}
        self._held_elsewhere: set[str] = set()  # duties another daemon led when last seen

    def request(self, name: str) -> None:
        """Makes duty ``name`` due now and wakes the loop (a NOTIFY arrived)."""
        for duty in self.duties:
            if duty.name == name:
                duty.next_due = 0.0
        self.wake.set()

    def due(self) -> list[Duty]:
        """The duties whose time has come."""
        now = self.clock()
        return [d for d in self.duties if d.next_due <= now]

    async def run_cycle(self, duties: Sequence[Duty] | None = None) -> dict[str, DutyOutcome]:
        """One numbered cycle of ``duties`` (default: the due ones), all at once."""
        chosen = list(self.due() if duties is None else duties)
        self.cycle += 1
        set_cycle_number(self.cycle)
        try:
            logger.debug(
                "Cycle %d: %s", self.cycle, ", ".join(d.name for d in chosen) or "nothing due"
            )
            outcomes = await asyncio.gather(*(self._run_duty(d) for d in chosen))
        finally:
            set_cycle_number(None)
        result = {d.name: o for d, o in zip(chosen, outcomes, strict=True)}
        self.outcomes.update(result)
        return result

    async def _run_duty(self, duty: Duty) -> DutyOutcome:
        duty.next_due = self.clock() + duty.interval
        started = time.monotonic()
        outcome: DutyOutcome = "failed"
        error: str | None = None
        try:
            if self.leases is None:
                await duty.action()
                outcome = "ran"
            else:
                ran, _ = await self.leases.run_exclusive(duty.name, duty.ttl, duty.action)
                outcome = "ran" if ran else "held elsewhere"
                if ran:
                    self._held_elsewhere.discard(duty.name)
                else:
                    self._held_elsewhere.add(duty.name)
        except asyncio.CancelledError:
            raise
        except (HubError, LeaseLost) as exc:  # expected trouble (database down...): one line
            logger.error("%s: %s", duty.error_message, exc)
            error = str(exc)
        except Exception as exc:
            logger.exception(duty.error_message)
            error = first_line(exc)
        if self.on_run is not None and outcome != "held elsewhere":
            await self.on_run(duty, outcome, error, time.monotonic() - started)
        return outcome

    async def run_once(self) -> dict[str, DutyOutcome]:
        """One cycle of every duty, due or not (``orchestrator run --once``)."""
        return await self.run_cycle(self.duties)

    async def keep_leases(self, stop: asyncio.Event) -> None:
        """Renews the leases this daemon holds and tries for the others, every quarter
        TTL until ``stop``: a lease taken over from a dead leader makes its duty due now."""
        if self.leases is None:
            return
        while not stop.is_set():
            for duty in self.duties:
                try:
                    state = await self.leases.acquire(duty.name, duty.ttl)
                except Exception as error:  # the runs' own renewals decide; try again
                    logger.debug("Lease of %s not renewed: %s", duty.name, error)
                    continue
                if not state.acquired:
                    self._held_elsewhere.add(duty.name)
                elif duty.name in self._held_elsewhere:
                    self._held_elsewhere.discard(duty.name)
                    logger.info("Took over duty %s from another daemon", duty.name)
                    self.request(duty.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(d.ttl for d in self.duties) / 4)

    async def run_until(self, stop: asyncio.Event) -> None:
        """Cycles until ``stop`` is set; a cycle in progress is finished first. The
        leases are kept meanwhile (:meth:`keep_leases`)."""
        keeper = asyncio.ensure_future(self.keep_leases(stop)) if self.duties else None
        try:
            await self._cycles(stop)
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    async def _cycles(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.due():
                await self.run_cycle()
                continue
            if not self.duties:
                await stop.wait()
                return
            timeout = max(0.0, min(d.next_due for d in self.duties) - self.clock())
            waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
            self.wake.clear()
