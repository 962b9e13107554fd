"""When to look for claimable jobs again: on ``NOTIFY hub_jobs``, or every poll interval.

``func_submit_job`` and ``func_approve_request`` send ``NOTIFY hub_jobs`` (payload: the
provider) when a job becomes claimable; ``func_cancel_job`` sends ``cancel:<worker_id>``
to the worker running a job it cancelled. The daemon and the workers each keep one
dedicated connection in ``LISTEN`` and look at the queue as soon as one arrives; the
notification only signals, it carries no job, so a missed one costs at most one poll
interval. This module is the one place that decides whether to LISTEN at all, on which
channel, and how an outage of the LISTEN connection is told; the drivers only execute
it (:func:`orchestrator.db.psycopg.listen` for the workers' threads,
:class:`orchestrator.db.asyncpg.AsyncListener` for the daemon).

LISTEN needs a session of its own, which a transaction pooler (PgBouncer, Supavisor in
transaction mode) does not give: notifications would reach whichever client next holds
the server connection, or nobody. Supabase REST has no LISTEN at all. Then, and in
poll-only mode, the queue is only polled.
"""

from __future__ import annotations

import logging

from orchestrator.db.target import RestTarget, Target
from orchestrator.jobs.calls import NOTIFY_CHANNEL

CHANNEL = NOTIFY_CHANNEL
CANCEL_PREFIX = "cancel:"


def cancel_payload(worker_id: str) -> str:
    """The payload ``func_cancel_job`` sends when it cancels a job ``worker_id`` runs."""
    return CANCEL_PREFIX + worker_id


def polling_reason(target: Target, *, poll_only: bool) -> str | None:
    """Why to poll instead of LISTEN on ``target`` (one phrase for the log), or None
    when LISTEN is worth trying."""
    if isinstance(target, RestTarget):
        return "Supabase REST has no LISTEN"
    if poll_only:
        return "poll-only mode"
    if target.behind_transaction_pooler:
        return (
            "the database URL looks like a transaction pooler (port 6432 or 6543), "
            "where LISTEN does not work"
        )
    return None


class ListenHealth:
    """Whether the LISTEN holds, and the log lines when that changes: one warning per
    outage (the queue is polled meanwhile), one line when it holds again."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.listening = False
        self._outage = False

    def up(self) -> None:
        """The LISTEN holds (again)."""
        if self._outage:
            self.logger.info("LISTEN %s holds again", CHANNEL)
        self.listening, self._outage = True, False

    def down(self, reason: object) -> None:
        """The LISTEN connection could not be had or was lost."""
        self.listening = False
        if not self._outage:
            self.logger.warning("LISTEN %s unavailable (%s); polling meanwhile", CHANNEL, reason)
        self._outage = True
