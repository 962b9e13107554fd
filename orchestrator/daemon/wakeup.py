"""Wake-ups on ``NOTIFY hub_jobs``: queue processing within milliseconds of an enqueue.

``func_submit_job`` (and approving a request) NOTIFY ``hub_jobs`` with the provider's
name when a job becomes claimable. The daemon LISTENs on a dedicated direct connection
and asks the control loop for a queue pass at once; the 5 s poll stays as the fallback,
so a lost notification only costs latency. NOTIFY only signals: the job itself is read
from the queue.

LISTEN needs a session of its own, which a transaction pooler (PgBouncer, Supavisor in
transaction mode) does not give: notifications would reach whichever client next holds
the server connection, or nobody. So the listener is not started in poll-only mode
(``ORCHESTRATOR_POLL_ONLY=true``, the file's ``poll_only``, or a URL on the poolers'
usual ports 6432 and 6543), nor when LISTEN fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from psycopg.conninfo import conninfo_to_dict

from orchestrator.db.asyncpg import CONNECT_ERRORS, connect, first_line
from orchestrator.errors import DatabaseUnavailable

CHANNEL = "hub_jobs"
POOLER_PORTS = frozenset({"6432", "6543"})

logger = logging.getLogger("orchestrator.daemon.wakeup")


def looks_like_transaction_pooler(dsn: str) -> bool:
    """True for URLs on PgBouncer's (6432) or Supavisor's transaction (6543) port."""
    try:
        port = str(conninfo_to_dict(dsn).get("port") or "")
    except Exception:
        return False
    return port in POOLER_PORTS


class NotifyListener:
    """LISTENs on ``hub_jobs`` and calls ``on_notify(payload)`` for each notification."""

    def __init__(self, dsn: str, on_notify: Callable[[str], None], channel: str = CHANNEL):
        self.dsn = dsn
        self.on_notify = on_notify
        self.channel = channel
        self._conn: asyncpg.Connection[Any] | None = None

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is open."""
        return self._conn is not None and not self._conn.is_closed()

    def _callback(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        self.on_notify(str(payload))

    async def start(self) -> bool:
        """Connects and LISTENs; False (and one warning) when that is not possible."""
        try:
            conn = await connect(self.dsn)
        except DatabaseUnavailable as error:
            logger.warning("Cannot LISTEN for job notifications (%s); polling only", error)
            return False
        try:
            await conn.add_listener(self.channel, self._callback)
        except CONNECT_ERRORS as error:
            conn.terminate()
            logger.warning(
                "Cannot LISTEN for job notifications (%s); polling only", first_line(error)
            )
            return False
        self._conn = conn
        logger.debug("Listening on %s", self.channel)
        return True

    async def ensure(self) -> bool:
        """Reconnects after a lost connection (called once per cycle); True if listening."""
        if self.listening:
            return True
        if self._conn is not None:
            self._conn = None
            logger.warning("The LISTEN connection was lost; reconnecting")
        return await self.start()

    async def close(self) -> None:
        """Stops listening and closes the connection."""
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await conn.close(timeout=5)
        except CONNECT_ERRORS:
            conn.terminate()
