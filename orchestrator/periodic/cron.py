"""Cron expressions, evaluated by croniter (a well-kept library: five fields, ranges,
lists, steps, names, ``@hourly`` and friends), always in UTC.

The SQL side stores the expression and the next tick; this module is the only place
that reads an expression, so the CLI refuses a bad one with the same rule the daemon
uses to compute ticks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter

from orchestrator.errors import InputRefused


def check_cron(expression: str) -> str:
    """``expression`` stripped, or one line saying what a cron expression looks like."""
    text = expression.strip()
    if not text or len(text) > 255 or not croniter.is_valid(text):
        raise InputRefused(
            f"invalid cron expression {expression[:100]!r}: expected five fields "
            "'minute hour day-of-month month day-of-week' such as '*/5 * * * *' "
            "(UTC), or @hourly, @daily, @weekly, @monthly"
        )
    return text


def next_tick(expression: str, after: datetime) -> datetime:
    """The first tick of ``expression`` strictly after ``after`` (UTC)."""
    value = croniter(check_cron(expression), after.astimezone(UTC)).get_next(datetime)
    assert isinstance(value, datetime)
    return value.astimezone(UTC)
