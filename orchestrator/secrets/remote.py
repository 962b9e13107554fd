"""What the remote providers (AWS Secrets Manager, Vault) share: one document of secrets
fetched at a time, kept ``ttl`` seconds, and the last good one served through an outage.

The seed fetched once and swallowed every later error (a warning, then None): a secret
rotated in the service was never seen, and an outage looked like a missing secret. Here
the document is re-fetched every ``ttl`` seconds, on a thread, while the current one keeps
answering (so no request, and no event loop, waits on the network after the first fetch);
when a fetch fails, the last good document keeps answering for up to an hour and
:meth:`RemoteSecrets.problem` says so (``/health`` reports ``secrets`` degraded, naming the
provider); a failed fetch is retried at most every 30 s. After the hour, or with nothing
fetched yet, the fetch happens in the caller and a failure raises :class:`SecretsError`, so
the next provider is asked. Messages never carry a value.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.secrets.base import SecretsError, normalise_name

STALE_LIMIT = 3600.0
RETRY_AFTER = 30.0


def quiet_library_loggers(*names: str) -> None:
    """Keeps an HTTP library's DEBUG lines (botocore logs whole response bodies, the
    secret included) out of the program's logs, unless the program set a level itself."""
    for name in names:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def secrets_document(data: Any, where: str) -> dict[str, str]:
    """A fetched mapping as canonical NAME -> value, or SecretsError saying what is wrong
    (never what is in it)."""
    if not isinstance(data, Mapping):
        raise SecretsError(f"{where} must hold a JSON object of NAME: value")
    values: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise SecretsError(
                f"{where}: the value of {str(key)[:80]!r} must be a string or number"
            )
        values[normalise_name(str(key))] = str(value)
    return values


class RemoteSecrets:
    """Base of a provider that fetches all its secrets in one call (:meth:`fetch`)."""

    name = "remote"

    def __init__(self, ttl: float = 300, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._values: dict[str, str] | None = None
        self._good_at = 0.0
        self._next_fetch = 0.0
        self._problem: str | None = None
        self._refreshing = False
        self._lock = threading.Lock()

    def fetch(self) -> dict[str, str]:
        """Every secret of the provider; SecretsError when it cannot answer."""
        raise NotImplementedError

    def get(self, key: str) -> str | None:
        """The value of ``key``: from the current document, or from the last good one
        during an outage of up to an hour."""
        return self._document().get(key)

    def problem(self) -> str | None:
        """Why the provider is serving stale values right now, or None."""
        with self._lock:
            return self._problem

    def _document(self) -> dict[str, str]:
        with self._lock:
            now = self.clock()
            if self._values is not None and now < self._next_fetch:
                return self._values
            if self._values is not None and now - self._good_at <= STALE_LIMIT:
                # Refreshed on a thread while the current values keep answering: a
                # request (or the event loop that serves it) never waits on the network
                # after the first fetch.
                if not self._refreshing:
                    self._refreshing = True
                    threading.Thread(
                        target=self._refresh, name=f"secrets-{self.name}", daemon=True
                    ).start()
                return self._values
            # Nothing fetched yet, or the last good values are over an hour old.
            try:
                values = self.fetch()
            except SecretsError:
                self._problem = None  # not degraded: failed (the manager reports it)
                raise
            self._store(values, now)
            return values

    def _refresh(self) -> None:
        try:
            values = self.fetch()
        except SecretsError as error:
            with self._lock:
                now = self.clock()
                self._problem = (
                    f"{self.name}: {error}; serving the values fetched "
                    f"{now - self._good_at:.0f} s ago (for at most {STALE_LIMIT:.0f} s)"
                )
                self._next_fetch = now + min(RETRY_AFTER, self.ttl or RETRY_AFTER)
                self._refreshing = False
            return
        except Exception as error:  # a library bug must not kill the refreshing for good
            with self._lock:
                self._problem = f"{self.name}: refresh failed: {type(error).__name__}"
                self._next_fetch = self.clock() + RETRY_AFTER
                self._refreshing = False
            return
        with self._lock:
            self._store(values, self.clock())
            self._refreshing = False

    def _store(self, values: dict[str, str], now: float) -> None:
        self._values, self._good_at, self._problem = values, now, None
        self._next_fetch = now + self.ttl

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Waits until no refresh is running (for tests and an orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._refreshing:
                    return
            time.sleep(0.01)
