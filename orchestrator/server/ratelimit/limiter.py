"""Rate-limit decisions: in PostgreSQL when it answers, in this process when it does not.

:class:`SqlLimiter` makes one ``func_rate_limit_hit`` call per decision (the window is
shared by every instance on the database). When the database cannot be reached in
``timeout`` seconds it fails open to :class:`LocalWindow`, the same sliding log kept in
this process, so one instance still bounds a flood; ``orchestrator_rate_limit_backend_
errors_total`` counts those decisions and ``orchestrator_rate_limit_fallback_active``
is 1 until the database answers again.

The seed's Python API (seed E10/E12) sits on top: :func:`get_rate_limiter` returns a
:class:`RateLimiter` with ``check``, ``track`` and ``get_usage``; ``webhook_rate_limiter``
(100/60) and ``s3_rate_limiter`` (50/60) are ready-made ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from orchestrator.db.calls import AsyncCallExecutor
from orchestrator.errors import DatabaseUnavailable, HubError
from orchestrator.server.ratelimit.calls import rate_limit_hit, rate_limit_usage
from orchestrator.server.ratelimit.rules import MAX_CALLS, MAX_PERIOD, MIN_PERIOD

logger = logging.getLogger("orchestrator.server.ratelimit")

DB_TIMEOUT = 2.0  # seconds a decision waits for the database before failing open
COMPLAIN_EVERY = 60.0


@dataclass(frozen=True)
class RateDecision:
    """One answer: allowed or not, and the values of the ``X-RateLimit-*`` headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix seconds when a slot next frees
    retry_after: int  # seconds (>= 1 when refused)
    audited: bool = False
    shared: bool = True  # False: decided by this process alone (database unreachable)


class RateLimitMetrics:
    """The limiter's process metrics (per app, not in the global registry)."""

    def __init__(self) -> None:
        self.violations = Counter(
            "orchestrator_rate_limit_violations",
            "Requests refused by the rate limiter, by rule.",
            ["rule"],
            registry=None,
        )
        self.backend_errors = Counter(
            "orchestrator_rate_limit_backend_errors",
            "Decisions made by this process alone because the database did not answer.",
            registry=None,
        )
        self.fallback_active = Gauge(
            "orchestrator_rate_limit_fallback_active",
            "1 while this process limits on its own (database unreachable), else 0.",
            registry=None,
        )


class LocalWindow:
    """The same exact sliding log, in this process (the fail-open fallback)."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, deque[float]] = OrderedDict()

    def _live(self, bucket: str, window: float, now: float) -> deque[float]:
        hits = self._buckets.get(bucket)
        if hits is None:
            hits = self._buckets[bucket] = deque()
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(bucket)
        while hits and hits[0] <= now - window:
            hits.popleft()
        return hits

    def hit(self, bucket: str, max_requests: int, window: float) -> RateDecision:
        """Decide one request on this process's own window."""
        now = time.time()
        hits = self._live(bucket, window, now)
        if len(hits) < max_requests:
            hits.append(now)
            return RateDecision(
                True,
                max_requests,
                max_requests - len(hits),
                math.ceil(hits[0] + window),
                0,
                shared=False,
            )
        frees = hits[len(hits) - max_requests] + window
        return RateDecision(
            False, max_requests, 0, math.ceil(frees), max(1, math.ceil(frees - now)), shared=False
        )

    def usage(self, bucket: str, max_requests: int, window: float) -> dict[str, Any]:
        """``{count, limit, remaining, reset_in_seconds}`` without a hit."""
        now = time.time()
        hits = self._live(bucket, window, now)
        reset = round(max(hits[0] + window - now, 0), 3) if hits else 0
        return {
            "count": len(hits),
            "limit": max_requests,
            "remaining": max(max_requests - len(hits), 0),
            "reset_in_seconds": reset,
        }


class SqlLimiter:
    """Decisions in PostgreSQL, failing open to a :class:`LocalWindow`."""

    def __init__(self, metrics: RateLimitMetrics | None = None, timeout: float = DB_TIMEOUT):
        self.metrics = metrics or RateLimitMetrics()
        self.local = LocalWindow()
        self.timeout = timeout
        self._complained = -math.inf
        self.falling_back: str | None = None  # why, while decisions are local

    def _fall_back(self, error: BaseException | None) -> None:
        self.metrics.backend_errors.inc()
        self.metrics.fallback_active.set(1)
        self.falling_back = str(error or f"no answer within {self.timeout:g} s")
        if time.monotonic() - self._complained >= COMPLAIN_EVERY:
            self._complained = time.monotonic()
            logger.warning(
                "Rate limiting falls back to this process's own windows (the database did "
                "not answer: %s); limits are per instance until it does",
                error or f"no answer within {self.timeout:g} s",
            )

    async def hit(
        self,
        db: AsyncCallExecutor | None,
        bucket: str,
        max_requests: int,
        window: float,
        audit: dict[str, Any] | None = None,
    ) -> RateDecision:
        """One decision on ``bucket``; never raises for an unreachable database."""
        if db is None:
            self._fall_back(DatabaseUnavailable("the hub is not started"))
            return self.local.hit(bucket, max_requests, window)
        try:
            # asyncio.timeout, not wait_for: no extra task per decision (this is the hot path).
            async with asyncio.timeout(self.timeout):
                raw = await db.run(rate_limit_hit(bucket, max_requests, window, audit))
        except (DatabaseUnavailable, TimeoutError) as error:
            self._fall_back(error if str(error) else None)
            return self.local.hit(bucket, max_requests, window)
        except HubError as error:
            # A refusal (a schema without the function, a bug): every route answering
            # 500 would be worse than limiting per process; logged and counted the same.
            self._fall_back(error)
            return self.local.hit(bucket, max_requests, window)
        self.metrics.fallback_active.set(0)
        self.falling_back = None
        return RateDecision(
            bool(raw["allowed"]),
            int(raw["limit"]),
            int(raw["remaining"]),
            int(raw["reset"]),
            int(raw["retry_after"]),
            bool(raw.get("audited", False)),
        )

    async def usage(
        self, db: AsyncCallExecutor | None, bucket: str, max_requests: int, window: float
    ) -> dict[str, Any]:
        """A bucket's usage without a hit (the local one when the database is away)."""
        if db is not None:
            try:
                result: dict[str, Any] = await asyncio.wait_for(
                    db.run(rate_limit_usage(bucket, max_requests, window)), self.timeout
                )
                return result
            except (HubError, TimeoutError) as error:
                self._fall_back(error if str(error) else None)
        return self.local.usage(bucket, max_requests, window)


# The executor the seed-style API uses when none is given: the running hub's pool.
_default_db: AsyncCallExecutor | None = None
_shared = SqlLimiter()


def bind_database(db: AsyncCallExecutor | None) -> None:
    """Sets (or, with None, clears) the executor of limiters made without one; the hub's
    lifespan binds its pool here."""
    global _default_db
    _default_db = db


class RateLimiter:
    """The seed's distributed limiter: ``max_requests`` per ``window_seconds`` per key,
    under ``key_prefix``, shared by every instance on the database."""

    def __init__(
        self,
        max_requests: int = 100,
        window_seconds: float = 60,
        key_prefix: str = "default",
        *,
        db: AsyncCallExecutor | None = None,
        limiter: SqlLimiter | None = None,
    ) -> None:
        if not 1 <= int(max_requests) <= MAX_CALLS:
            raise ValueError(f"max_requests={max_requests!r}: expected 1 to {MAX_CALLS}")
        if not MIN_PERIOD <= float(window_seconds) <= MAX_PERIOD:
            raise ValueError(
                f"window_seconds={window_seconds!r}: expected {MIN_PERIOD} to {MAX_PERIOD:g}"
            )
        if not key_prefix or len(key_prefix) > 100 or "|" in key_prefix:
            raise ValueError(f"key_prefix={key_prefix!r}: expected 1-100 characters without |")
        self.max_requests = int(max_requests)
        self.window_seconds = float(window_seconds)
        self.key_prefix = key_prefix
        self.db = db
        self.limiter = limiter or _shared

    def _bucket(self, key: str) -> str:
        return f"api:{self.key_prefix}|{key}"[:512]

    async def decide(self, key: str) -> RateDecision:
        """Counts a hit on ``key`` when allowed; the full :class:`RateDecision`."""
        return await self.limiter.hit(
            self.db or _default_db, self._bucket(key), self.max_requests, self.window_seconds
        )

    async def check(self, key: str) -> bool:
        """True (and the hit counted) when ``key`` is within its limit."""
        return (await self.decide(key)).allowed

    @contextlib.asynccontextmanager
    async def track(self, key: str) -> AsyncIterator[bool]:
        """``async with limiter.track(key) as allowed:`` (the hit counts when allowed)."""
        yield await self.check(key)

    async def get_usage(self, key: str) -> dict[str, Any]:
        """``{count, limit, remaining, reset_in_seconds}`` of ``key``, without a hit."""
        return await self.limiter.usage(
            self.db or _default_db, self._bucket(key), self.max_requests, self.window_seconds
        )


_limiters: dict[tuple[str, int, float], RateLimiter] = {}


async def get_rate_limiter(
    max_requests: int = 100,
    window_seconds: float = 60,
    key_prefix: str = "default",
    *,
    db: AsyncCallExecutor | None = None,
) -> RateLimiter:
    """The seed's ``await get_rate_limiter(...)``: one limiter per (prefix, limit, window)."""
    if db is not None:
        return RateLimiter(max_requests, window_seconds, key_prefix, db=db)
    key = (key_prefix, int(max_requests), float(window_seconds))
    found = _limiters.get(key)
    if found is None:
        found = _limiters[key] = RateLimiter(max_requests, window_seconds, key_prefix)
    return found


webhook_rate_limiter = RateLimiter(100, 60, "webhook")
s3_rate_limiter = RateLimiter(50, 60, "s3")
