"""A log row as one coloured line of the tail (and a second for its exception).

The level decides the colour, as in lnav and k9s: errors red, warnings yellow, debug
dim, so trouble stands out while the tail scrolls.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from orchestrator.query import LogRow

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
SOURCE_WIDTH = 16
# Five columns for the level, so the message keeps room at 80 columns.
LEVEL_LABELS = {"WARNING": "WARN", "CRITICAL": "CRIT"}


def clock(when: datetime) -> str:
    """``HH:MM:SS`` in UTC, the time zone of the log store."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when:%H:%M:%S}"


def render_row(row: LogRow) -> Text:
    """``12:01:02 ERROR gpu-demo-a100-1  Task failed`` in the level's colours; an
    exception adds its last line (the error itself) underneath. The source shown is
    the row's source_id (who wrote it); WARNING and CRITICAL read WARN and CRIT."""
    level = row.log_level
    source = row.source_id
    if len(source) > SOURCE_WIDTH:
        source = source[: SOURCE_WIDTH - 1] + "~"
    line = Text(no_wrap=False)
    line.append(clock(row.timestamp), style="dim")
    line.append(" ")
    line.append(f"{LEVEL_LABELS.get(level, level):<5}", style=LEVEL_STYLES.get(level, ""))
    line.append(" ")
    line.append(f"{source:<{SOURCE_WIDTH}} ", style="cyan")
    line.append(row.message.replace("\n", " "), style=MESSAGE_STYLES.get(level, ""))
    if row.exception:
        last = [part for part in row.exception.strip().splitlines() if part.strip()]
        if last:
            line.append("\n    -> " + last[-1].strip(), style=MESSAGE_STYLES.get(level, "red"))
    return line
