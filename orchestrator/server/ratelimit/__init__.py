"""Rate limiting with its state in PostgreSQL (OPS §9): rules, the limiter, the middleware,
and the seed's Python API (``get_rate_limiter``, ``webhook_rate_limiter``, ``s3_rate_limiter``)."""

from orchestrator.server.ratelimit.limiter import (
    RateDecision,
    RateLimiter,
    bind_database,
    get_rate_limiter,
    s3_rate_limiter,
    webhook_rate_limiter,
)
from orchestrator.server.ratelimit.middleware import RateLimitMiddleware, rate_limit_service
from orchestrator.server.ratelimit.rules import Rule, build_rules

__all__ = [
    "RateDecision",
    "RateLimitMiddleware",
    "RateLimiter",
    "Rule",
    "bind_database",
    "build_rules",
    "get_rate_limiter",
    "rate_limit_service",
    "s3_rate_limiter",
    "webhook_rate_limiter",
]
