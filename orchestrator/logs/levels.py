"""The five levels of ``system_logs`` and their severity numbers, written once.

The numbers are OpenTelemetry's (DEBUG 5, INFO 9, WARNING 13, ERROR 17, CRITICAL 21),
as the SQL functions store them in ``severity_number``; the direct COPY path, the log
queries and the benches take them from here.
"""

from __future__ import annotations

import logging

SEVERITY: dict[str, int] = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
LEVELS: tuple[str, ...] = tuple(SEVERITY)
ALIASES: dict[str, str] = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def level_for_number(levelno: int) -> str:
    """The system_logs level for any numeric logging level (custom levels round up)."""
    if levelno <= logging.DEBUG:
        return "DEBUG"
    if levelno <= logging.INFO:
        return "INFO"
    if levelno <= logging.WARNING:
        return "WARNING"
    if levelno <= logging.ERROR:
        return "ERROR"
    return "CRITICAL"
