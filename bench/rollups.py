"""Switching the count-rollup trigger (sql/functions/logs/rollups.sql) in a bench's own
database, for the write benchmarks."""

from __future__ import annotations

from typing import Any

import psycopg


def set_rollups(conn: psycopg.Connection[Any], state: str) -> None:
    """Turns the trigger on or off, so that ``--rollups off`` measures a path without it
    in the same run of the same script (its cost is the difference)."""
    action = "ENABLE" if state == "on" else "DISABLE"
    conn.execute(f"ALTER TABLE public.system_logs {action} TRIGGER system_logs_rollup")  # type: ignore[arg-type]
