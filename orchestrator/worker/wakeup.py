"""When the worker looks for work again: on ``NOTIFY hub_jobs``, or every poll interval.

``func_submit_job`` and ``func_approve_request`` send ``NOTIFY hub_jobs`` (payload: the
provider) when a job becomes claimable. A worker keeps one dedicated connection in
``LISTEN`` and wakes as soon as one arrives; the notification only signals, it carries
no job, so a missed one costs at most one poll interval. Transaction-mode poolers
(PgBouncer, Supavisor) cannot ``LISTEN``: ``--poll-only`` never opens that connection,
and a listener that loses its connection falls back to polling and reconnects later.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from orchestrator.db.psycopg import connect

CHANNEL = "hub_jobs"
_log = logging.getLogger("orchestrator.worker.wakeup")


class Wakeup(Protocol):
    """Waits until there may be work, at most ``timeout`` seconds; ``interrupt`` ends a wait."""

    def wait(self, timeout: float) -> bool: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


class PollWakeup:
    """Polling only: every wait lasts its full timeout unless interrupted."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Sleeps ``timeout`` seconds (or until :meth:`interrupt`); False = timed out."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def interrupt(self) -> None:
        """Ends the current (or next) wait now."""
        self._event.set()

    def close(self) -> None:
        """Nothing to release."""


class ListenWakeup(PollWakeup):
    """``LISTEN hub_jobs`` on a dedicated connection, polling when it is unavailable.

    A background thread blocks on the connection's notifications and sets the event
    for those of ``provider`` (or with no payload). When the connection breaks it
    retries every ``retry_seconds``; meanwhile waits simply time out (polling).
    """

    def __init__(self, url: str, provider: str = "local", *, retry_seconds: float = 5.0) -> None:
        super().__init__()
        self.url, self.provider, self.retry_seconds = url, provider, retry_seconds
        self._closing = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="hub-jobs-listen", daemon=True)
        self._thread.start()

    def ready(self, timeout: float) -> bool:
        """Whether the LISTEN is in place (tests and the first claim may wait for it)."""
        return self._listening.wait(timeout)

    def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                with connect(self.url) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self.interrupt()  # anything queued while we were not listening
                    while not self._closing.is_set():
                        # A short timeout lets close() end this thread without a cancel.
                        for note in conn.notifies(timeout=0.5):
                            if note.payload in ("", self.provider):
                                self.interrupt()
            except Exception as error:
                if self._closing.is_set():
                    return
                self._listening.clear()
                _log.warning("LISTEN %s unavailable, polling meanwhile: %s", CHANNEL, error)
            if self._closing.wait(self.retry_seconds):
                return

    def close(self) -> None:
        """Stops listening; the thread closes its connection within half a second."""
        self._closing.set()
        self._thread.join(timeout=5)
