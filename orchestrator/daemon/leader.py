"""Duty leases: two daemons against one database never run the same duty at once.

Each duty (queue processing, job polling, ...) has a lease row in ``daemon_leases``
(sql/functions/daemon/leases.sql). A daemon runs a duty only while it holds that duty's lease; it
keeps the lease between runs (renewing it costs one statement), so one daemon stays the duty's
leader until it stops (and releases) or dies (and the lease expires). While a duty runs,
the lease is renewed every third of its TTL; if a renewal fails or is refused, the run
is cancelled, because another daemon may take the duty once the lease has expired.

Not session advisory locks: through PgBouncer or Supavisor in transaction mode a session
lock stays on a server connection that other clients then use (tests/integration/
test_pgbouncer.py shows it), and a crashed daemon's lock outlives it until that server
connection closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from orchestrator.daemon.calls import LeaseState, release_duty_lease, try_duty_lease
from orchestrator.db.calls import AsyncCallExecutor

T = TypeVar("T")

logger = logging.getLogger("orchestrator.daemon.leader")


def make_holder_id(instance_id: str) -> str:
    """A name unique to this process: instance id, host, pid and a random suffix, so two
    daemons started with the same ORCHESTRATOR_INSTANCE_ID still hold leases apart."""
    return f"{instance_id}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(Exception):
    """The lease of a running duty could not be renewed; the run was cancelled."""


class DutyLeases:
    """The leases this daemon holds, and running a duty under its lease."""

    def __init__(self, executor: AsyncCallExecutor, holder: str) -> None:
        self.executor = executor
        self.holder = holder
        self.held: set[str] = set()

    async def acquire(self, duty: str, ttl_seconds: int) -> LeaseState:
        """Takes or renews the lease; remembers it when acquired, forgets it when not."""
        state = await self.executor.run(try_duty_lease(duty, self.holder, ttl_seconds))
        if state.acquired:
            self.held.add(duty)
        else:
            self.held.discard(duty)
        return state

    async def run_exclusive(
        self, duty: str, ttl_seconds: int, body: Callable[[], Awaitable[T]]
    ) -> tuple[bool, T | None]:
        """Runs ``body`` if (and only while) this daemon holds ``duty``'s lease.

        Returns ``(False, None)`` when another daemon holds it. The lease is renewed
        every ``ttl_seconds / 3`` during the run; a failed or refused renewal cancels
        the run and raises :class:`LeaseLost` once the local deadline says the lease
        may be gone (the deadline is measured from before each call, so it errs early).
        """
        started = time.monotonic()
        state = await self.acquire(duty, ttl_seconds)
        if not state.acquired:
            logger.debug("Duty %s is held by %s; skipped", duty, state.holder)
            return False, None
        deadline = started + ttl_seconds
        renew_every = ttl_seconds / 3
        task = asyncio.ensure_future(body())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=renew_every)
                if done:
                    return True, task.result()
                asked = time.monotonic()
                try:
                    renewed = await asyncio.wait_for(self.acquire(duty, ttl_seconds), renew_every)
                except Exception as error:  # unreachable or stalled database: not renewed
                    if time.monotonic() + renew_every < deadline:
                        continue  # the lease is still ours for a while: try again
                    raise LeaseLost(
                        f"lease of {duty} could not be renewed: {error or type(error).__name__}"
                    ) from None
                if not renewed.acquired:
                    raise LeaseLost(f"lease of {duty} was taken by {renewed.holder}")
                deadline = asked + ttl_seconds
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def release_all(self) -> None:
        """Gives back every lease held (a stopping daemon), so another daemon takes
        over at once; failures are logged, the leases then expire on their own."""
        for duty in sorted(self.held):
            try:
                await self.executor.run(release_duty_lease(duty, self.holder))
            except Exception as error:
                logger.warning("Could not release the lease of %s: %s", duty, error)
        self.held.clear()
