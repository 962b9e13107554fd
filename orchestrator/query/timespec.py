"""Times as people type them: durations back from now (``15m``, ``2h``, ``1h30m``, or
``-15m`` as journalctl writes it) and ISO 8601 times (``2026-12-01T08:00:00Z``,
``2026-12-01``), as logcli and journalctl users expect. Anything else, a duration
reaching past the calendar (``99999999d``) included, is one clear
:class:`QueryInputError`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from orchestrator.errors import QueryInputError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
DURATION_HELP = "a duration such as 90s, 15m, 2h, 3d, 1w or 1h30m"
LONGEST = timedelta(days=366 * 100)  # a century back is the oldest window one can ask for
TIME_HELP = f"{DURATION_HELP} (that long ago), or an ISO 8601 time such as 2026-12-01T08:00:00Z"


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """``15m`` -> 15 minutes; units s, m, h, d, w, combinable (``1h30m``)."""
    compact = text.strip().lower().replace(" ", "")
    if not _DURATION.fullmatch(compact):
        raise QueryInputError(f"malformed {what} {text!r}: expected {DURATION_HELP}")
    total = timedelta()
    try:
        for number, unit in _PART.findall(compact):
            total += timedelta(**{_UNITS[unit]: float(number)})
    except OverflowError:
        total = LONGEST * 2
    if total > LONGEST:
        raise QueryInputError(
            f"{what} {text!r} is too long: expected {DURATION_HELP}, at most 100 years"
        )
    if total <= timedelta(0):
        raise QueryInputError(f"{what} {text!r} is zero: expected {DURATION_HELP}")
    return total


def parse_time(text: str, *, now: datetime | None = None, what: str = "time") -> datetime:
    """A duration (that long before ``now``; a leading ``-`` changes nothing), ``now``,
    or an ISO 8601 time (no zone = UTC)."""
    moment = now or datetime.now(UTC)
    compact = text.strip()
    if compact.lower() == "now":
        return moment
    back = compact[1:] if compact.startswith("-") else compact
    if _DURATION.fullmatch(back.lower().replace(" ", "")):
        return moment - parse_duration(back, what=what)
    try:
        parsed = datetime.fromisoformat(compact)
    except ValueError:
        raise QueryInputError(f"malformed {what} {text!r}: expected {TIME_HELP}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
