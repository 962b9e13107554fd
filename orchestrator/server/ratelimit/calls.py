"""The rate limiter's SQL functions as :class:`~orchestrator.db.calls.Call` values.

``func_rate_limit_hit`` is the one decision (one round trip, the database clock, the
bucket's row lock); the others read, prune and count buckets.
"""

from __future__ import annotations

from typing import Any

from orchestrator.db.calls import Call
from orchestrator.db.jsonsafe import json_safe


def rate_limit_hit(
    bucket: str, max_requests: int, window_seconds: float, audit: dict[str, Any] | None = None
) -> Call[dict[str, Any]]:
    """Decide one request: ``{allowed, limit, remaining, reset, retry_after, audited}``."""
    return Call(
        "func_rate_limit_hit",
        {
            "bucket": bucket,
            "max_requests": max_requests,
            "window_seconds": window_seconds,
            # jsonb holds no NUL and no lone surrogate: a request path or User-Agent may.
            "audit": None if audit is None else json_safe(audit),
        },
        dict,
    )


def rate_limit_usage(bucket: str, max_requests: int, window_seconds: float) -> Call[dict[str, Any]]:
    """Read a bucket without a hit: ``{count, limit, remaining, reset_in_seconds}``."""
    return Call(
        "func_rate_limit_usage",
        {"bucket": bucket, "max_requests": max_requests, "window_seconds": window_seconds},
        dict,
    )


def rate_limit_prune() -> Call[dict[str, Any]]:
    """Delete idle buckets: ``{deleted}``."""
    return Call("func_rate_limit_prune", {}, dict)


def rate_limit_tracked() -> Call[dict[str, Any]]:
    """Buckets with a hit inside their window: ``{tracked_clients}``."""
    return Call("func_rate_limit_tracked", {}, dict)
