"""A log row as one coloured line of the tail (and a second for its exception).

The level decides the colour, as in lnav and k9s: errors red, warnings yellow, debug
dim, so trouble stands out while the tail scrolls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from orchestrator.dashboard.source import TailRow

LEVEL_STYLES: dict[str, str] = {
    "DEBUG": "dim",
    "INFO": "green",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold white on red",
}
# Styles of the message itself; INFO keeps the terminal's own colour.
MESSAGE_STYLES: dict[str, str] = {
    "DEBUG": "dim",
    "WARNING": "yellow",
    "ERROR": "red",
    "CRITICAL": "bold red",
}
SOURCE_WIDTH = 14


def clock(stamp: Any) -> str:
    """``HH:MM:SS`` in UTC, the time zone of the log store."""
    when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when:%H:%M:%S}"


def render_row(row: TailRow) -> Text:
    """``12:01:02 ERROR gpu-demo-a100-1  Task failed`` with the level's colours; an
    exception adds its last line (the error itself) underneath."""
    level = row.log_level
    source = row.worker_id or row.source_id
    if len(source) > SOURCE_WIDTH:
        source = source[: SOURCE_WIDTH - 1] + "~"
    line = Text(no_wrap=False)
    line.append(clock(row.timestamp), style="dim")
    line.append(" ")
    line.append(f"{level:<8}", style=LEVEL_STYLES.get(level, ""))
    line.append(" ")
    line.append(f"{source:<{SOURCE_WIDTH}} ", style="cyan")
    line.append(row.message.replace("\n", " "), style=MESSAGE_STYLES.get(level, ""))
    if row.exception:
        last = [part for part in row.exception.strip().splitlines() if part.strip()]
        if last:
            line.append("\n    -> " + last[-1].strip(), style=MESSAGE_STYLES.get(level, "red"))
    return line
