"""Wake-ups on ``NOTIFY hub_jobs``: queue processing within milliseconds of an enqueue.

The daemon asks the control loop for a queue pass as soon as a notification arrives;
the 5 s poll stays as the fallback, so a lost notification only costs latency. Whether
to LISTEN at all, the channel and how an outage is told are
:mod:`orchestrator.jobs.wakeup`'s; asyncpg executes the LISTEN
(:class:`orchestrator.db.asyncpg.AsyncListener`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.db.asyncpg import AsyncListener
from orchestrator.errors import HubError
from orchestrator.jobs.wakeup import CHANNEL, ListenHealth

logger = logging.getLogger("orchestrator.daemon.wakeup")


class NotifyListener:
    """LISTENs on ``hub_jobs`` and calls ``on_notify(payload)`` for each notification."""

    def __init__(self, dsn: str, on_notify: Callable[[str], None]) -> None:
        self.dsn = dsn
        self.on_notify = on_notify
        self._listener: AsyncListener | None = None
        self._health = ListenHealth(logger)

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is open."""
        return self._listener is not None and self._listener.alive

    async def start(self) -> bool:
        """Connects and LISTENs; False (and one warning) when that is not possible."""
        try:
            self._listener = await AsyncListener.start(self.dsn, CHANNEL, self.on_notify)
        except HubError as error:
            self._health.down(error)
            return False
        self._health.up()
        logger.debug("Listening on %s", CHANNEL)
        return True

    async def ensure(self) -> bool:
        """Reconnects after a lost connection (called once per cycle); True if listening."""
        if self.listening:
            return True
        if self._listener is not None:
            self._listener = None
            self._health.down("the connection was lost")
        return await self.start()

    async def close(self) -> None:
        """Stops listening and closes the connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
