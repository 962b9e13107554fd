"""Python callables that worker tests run as ``tests.support.jobfuncs:NAME`` jobs."""

from __future__ import annotations

import logging

log = logging.getLogger("tests.jobfuncs")


def add(a: int, b: int) -> dict[str, int]:
    """Returns the sum, and logs once (the record must carry the job's task id)."""
    log.info("adding %d and %d", a, b)
    return {"sum": a + b}


def explode(message: str = "boom") -> None:
    """Raises, so the job fails with the exception's text."""
    raise RuntimeError(message)
