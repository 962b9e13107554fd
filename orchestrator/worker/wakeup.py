"""When the worker looks for work again: on ``NOTIFY hub_jobs``, or every poll interval.

Whether to LISTEN, the channel and how an outage is told are
:mod:`orchestrator.jobs.wakeup`'s; psycopg executes the LISTEN
(:func:`orchestrator.db.psycopg.listen`) on a thread of its own, and a listener that
loses its connection polls meanwhile and reconnects later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from orchestrator.db.psycopg import listen
from orchestrator.errors import HubError
from orchestrator.jobs.wakeup import CHANNEL, ListenHealth, cancel_payload

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

    A background thread runs the LISTEN and sets the event for notifications of
    ``provider`` (or with no payload); ``cancel:<worker_id>`` (a job of this worker was
    cancelled) calls ``on_cancel``. When the connection breaks it retries every
    ``retry_seconds``; meanwhile waits simply time out (polling).
    """

    def __init__(
        self,
        url: str,
        provider: str = "local",
        *,
        retry_seconds: float = 5.0,
        worker_id: str | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.url, self.provider, self.retry_seconds = url, provider, retry_seconds
        self._cancel_payload = None if worker_id is None else cancel_payload(worker_id)
        self._on_cancel = on_cancel
        self._closing = threading.Event()
        self._listening = threading.Event()
        self._health = ListenHealth(_log)
        self._thread = threading.Thread(target=self._listen, name="hub-jobs-listen", daemon=True)
        self._thread.start()

    def ready(self, timeout: float) -> bool:
        """Whether the LISTEN is in place (tests and the first claim may wait for it)."""
        return self._listening.wait(timeout)

    def _on_listening(self) -> None:
        self._health.up()
        self._listening.set()
        self.interrupt()  # anything queued while we were not listening

    def _on_notify(self, payload: str) -> None:
        if payload in ("", self.provider):
            self.interrupt()
        elif payload == self._cancel_payload and self._on_cancel is not None:
            self._on_cancel()

    def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                listen(
                    self.url,
                    CHANNEL,
                    self._on_notify,
                    self._closing,
                    on_listening=self._on_listening,
                )
            except HubError as error:
                if self._closing.is_set():
                    return
                self._listening.clear()
                self._health.down(error)
            if self._closing.wait(self.retry_seconds):
                return

    def close(self) -> None:
        """Stops listening; the thread closes its connection within half a second."""
        self._closing.set()
        self._thread.join(timeout=5)
