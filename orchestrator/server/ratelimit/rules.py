"""Which limit applies to a request: the seed's rule table on the hub's paths (OPS §9.1).

First matching rule wins; a team's own rules (``RateLimitMiddleware(rules=...)``) are
tried before the built-in ones, and the default rule (``RATE_LIMIT_CALLS`` per
``RATE_LIMIT_PERIOD``) catches the rest. Exclusions match whole path segments
(``/health`` covers ``/health/ready``, not ``/healthz``): the seed's ``startswith`` let
``/health-anything`` through. Keys are the resolved client address (OPS §8): an IPv4
address, or the /64 of an IPv6 one (one host owns a whole /64).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConfigError

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_CALLS = 10_000
MIN_PERIOD, MAX_PERIOD = 0.1, 86_400.0


@dataclass(frozen=True)
class Rule:
    """One limit: ``calls`` per ``period`` seconds on paths matching ``pattern``."""

    id: str
    pattern: str
    calls: int
    period: float
    methods: frozenset[str] | None = None  # None: every method
    s3: bool = False  # answer the S3 way (503 SlowDown), for S3 clients' own retries
    # Requests whose query has all of these parameters are not counted (S3 UploadPart:
    # a multipart upload of a large file sends hundreds of parts in a minute).
    uncounted_query: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > 200 or not self.id.isprintable():
            raise ConfigError(
                f"rate limit rule id {self.id!r}: expected 1-200 printable characters"
            )
        if not 1 <= self.calls <= MAX_CALLS:
            raise ConfigError(
                f"rate limit rule {self.id}: calls={self.calls!r}, expected 1 to {MAX_CALLS}"
            )
        if not MIN_PERIOD <= self.period <= MAX_PERIOD:
            raise ConfigError(
                f"rate limit rule {self.id}: period={self.period!r}, "
                f"expected {MIN_PERIOD} to {MAX_PERIOD:g} seconds"
            )
        try:
            object.__setattr__(self, "_regex", re.compile(self.pattern))
        except re.error as error:
            raise ConfigError(
                f"rate limit rule {self.id}: pattern {self.pattern!r} is not a regular "
                f"expression ({error})"
            ) from None
        if self.methods is not None and not self.methods <= HTTP_METHODS:
            bad = sorted(self.methods - HTTP_METHODS)
            raise ConfigError(
                f"rate limit rule {self.id}: unknown method(s) {', '.join(bad)}; "
                f"expected some of {', '.join(sorted(HTTP_METHODS))} or none for all"
            )

    def counts(self, query_string: bytes) -> bool:
        """False when the query names every parameter of ``uncounted_query``."""
        if not self.uncounted_query:
            return True
        names = {part.split(b"=", 1)[0] for part in query_string.split(b"&")}
        return not all(name.encode() in names for name in self.uncounted_query)

    def matches(self, path: str, method: str) -> bool:
        """True when this rule limits ``method path``."""
        regex: re.Pattern[str] = self.__dict__["_regex"]
        return (self.methods is None or method in self.methods) and regex.search(path) is not None


# The hub's endpoints (OPS §9.1), then the seed's rules for endpoints a team's app may have.
HUB_RULES: tuple[Rule, ...] = (
    Rule("jobs_submit", r"^/api/cloud/jobs$", 20, 60, frozenset({"POST"})),
    Rule("jobs_cancel", r"^/api/cloud/jobs/[^/]+/cancel$", 30, 60, frozenset({"POST"})),
    Rule("webhooks", r"^/api/webhooks/", 100, 60),
    Rule(
        "storage",
        r"^/api/cloud/storage(/|$)",
        50,
        60,
        s3=True,
        uncounted_query=("partNumber", "uploadId"),
    ),
    Rule("auth_login", r"^/api/auth/login$", 5, 60, frozenset({"POST"})),
    Rule("auth_register", r"^/api/auth/register$", 3, 60, frozenset({"POST"})),
    Rule("auth_api_keys", r"^/api/auth/api-keys$", 10, 60, frozenset({"POST"})),
    Rule("quotas", r"^/api/quotas/", 30, 60),
)
# Never limited: probes, scrapes, docs, the event stream, and reading provider config.
EXCLUDED: tuple[tuple[str, frozenset[str] | None], ...] = (
    ("/health", None),
    ("/api/cloud/health", None),
    ("/metrics", None),
    ("/api/cloud/metrics/prometheus", None),
    ("/api/cloud/providers", frozenset({"GET", "HEAD"})),
    ("/api/events/stream", None),
    ("/docs", None),
    ("/openapi.json", None),
)


def parse_rule(item: Any, index: int) -> Rule:
    """A team's rule: a :class:`Rule`, the seed's ``(pattern, calls, period, methods)``
    tuple, or a mapping with those keys (and an optional ``id``)."""
    if isinstance(item, Rule):
        return item
    if isinstance(item, dict):
        fields = dict(item)
    elif isinstance(item, list | tuple) and len(item) in (3, 4):
        fields = dict(zip(("pattern", "calls", "period", "methods"), item, strict=False))
    else:
        raise ConfigError(
            f"rate limit rule #{index + 1}: expected (pattern, calls, period, methods), "
            f"got {str(item)[:80]!r}"
        )
    methods = fields.get("methods")
    if isinstance(methods, str):
        methods = [methods]
    try:
        return Rule(
            id=str(fields.get("id") or fields["pattern"]),
            pattern=str(fields["pattern"]),
            calls=int(fields["calls"]),
            period=float(fields["period"]),
            methods=None if methods is None else frozenset(str(m).upper() for m in methods),
            s3=bool(fields.get("s3", False)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(
            f"rate limit rule #{index + 1}: {error}; expected pattern, calls, period, methods"
        ) from None


def build_rules(calls: int, period: float, rules: Iterable[Any] | None = None) -> list[Rule]:
    """A team's rules, the built-in ones, then the default (``calls`` per ``period``)."""
    own = [parse_rule(item, i) for i, item in enumerate(rules or ())]
    return [*own, *HUB_RULES, Rule("default", r"", calls, float(period))]


def is_excluded(
    path: str, method: str, excluded: Sequence[tuple[str, frozenset[str] | None]] = EXCLUDED
) -> bool:
    """True when ``path`` is (under) an excluded prefix for ``method``, segment-wise."""
    for prefix, methods in excluded:
        if (path == prefix or path.startswith(prefix + "/")) and (
            methods is None or method in methods
        ):
            return True
    return False


def first_match(rules: Sequence[Rule], path: str, method: str) -> Rule:
    """The rule that applies (the default matches everything)."""
    for rule in rules:
        if rule.matches(path, method):
            return rule
    return rules[-1]


def client_key(address: str | None, ipv6_prefix: int = 64) -> str:
    """The limiter's key of a resolved client address: IPv4 as is, IPv6 by its /64."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{ipv6_prefix}", strict=False))
    return str(parsed)
