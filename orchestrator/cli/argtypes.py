"""argparse types whose refusals name what is accepted, in one line.

argparse's own ``type=int`` says ``invalid int value: 'x'``; these say ``expected a
whole number from 1 to 1000, got 'x'`` (the parser adds ``argument --limit:``), and
the command exits with status 2 like any usage error.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from orchestrator.errors import HubError


def bounded(kind: Callable[[str], float], low: float, high: float, accepted: str) -> Any:
    """A number of ``kind`` (int or float) in [low, high], else one line saying so."""

    def parse(text: str) -> float:
        try:
            value = kind(text.strip())
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # also false for NaN
            raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
        return value

    return parse


def checked(check: Callable[[str], Any]) -> Any:
    """An argparse type from one of the hub's own checks (a level, a task id): its
    one-line error becomes the parser's, so it is a usage error too."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except HubError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def whole_number(low: int, high: int) -> Any:
    """An int in [low, high]: ``expected a whole number from LOW to HIGH``."""
    return bounded(int, low, high, f"a whole number from {low} to {high}")


def seconds(low: float, high: float) -> Any:
    """A float number of seconds in [low, high]."""
    return bounded(float, low, high, f"a number of seconds from {low:g} to {high:g}")


# Flags whose value may start with "-" (``--since -5m``, journalctl's way of saying
# "5 minutes ago"); argparse would take such a value for an unknown option.
DASH_VALUE_FLAGS = frozenset({"--since", "--until"})


def attach_dash_values(argv: list[str]) -> list[str]:
    """``["--since", "-5m"]`` as ``["--since=-5m"]``, which argparse reads as a value."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        following = argv[i + 1] if i + 1 < len(argv) else ""
        if token in DASH_VALUE_FLAGS and following[:1] == "-" and following[1:2].isdigit():
            out.append(f"{token}={following}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out
