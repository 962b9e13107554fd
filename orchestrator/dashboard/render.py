"""Log rows as the dashboard shows them: one coloured line in the tail (and a second for
its exception), and the whole row in the detail view.

The level decides the colour, as in lnav and k9s: errors red, warnings yellow, debug
dim, so trouble stands out while the tail scrolls. Each line carries the context seed
004 promises (who wrote it, the task, the cycle), so the lines of two jobs running at
once are told apart, and the date when the row is not from today.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from rich.console import Group, RenderableType
from rich.table import Table
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
TASK_WIDTH = 8  # a task id's first 8 hex digits, as git shortens a commit
# Five columns for the level, so the message keeps room at 80 columns.
LEVEL_LABELS = {"WARNING": "WARN", "CRITICAL": "CRIT"}


def clock(when: datetime, today: date | None = None) -> str:
    """``HH:MM:SS`` in UTC (the zone of the store), ``YYYY-MM-DD HH:MM:SS`` when the
    row is not from ``today`` (UTC; default: now)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    today = today or datetime.now(UTC).date()
    return f"{when:%H:%M:%S}" if when.date() == today else f"{when:%Y-%m-%d %H:%M:%S}"


def cut(text: str, width: int) -> str:
    """``text`` padded or cut to ``width`` characters (cut ends with ~)."""
    return f"{text:<{width}}" if len(text) <= width else text[: width - 1] + "~"


def exception_cause(exception: str | None) -> str | None:
    """The last non-blank line of an exception (its type and text), as the errors
    summary's cause is computed in SQL (hub_internal.func_log_exception_cause)."""
    lines = [part.strip() for part in (exception or "").splitlines() if part.strip()]
    return lines[-1][:500] if lines else None


def render_row(row: LogRow, today: date | None = None) -> Text:
    """``12:01:02 ERROR gpu-demo-a100-1  3f2e4d5c #12 Task failed`` in the level's
    colours: time (with the date when not today), level, who wrote it (source_id),
    the task's first 8 digits, ``#cycle`` and ``@worker`` when the worker is not the
    writer; an exception adds its last line (the error itself) underneath."""
    level = row.log_level
    line = Text(no_wrap=False)
    line.append(clock(row.timestamp, today), style="dim")
    line.append(" ")
    line.append(f"{LEVEL_LABELS.get(level, level):<5}", style=LEVEL_STYLES.get(level, ""))
    line.append(" ")
    line.append(cut(row.source_id, SOURCE_WIDTH) + " ", style="cyan")
    line.append(cut((row.task_id or "")[:TASK_WIDTH], TASK_WIDTH) + " ", style="magenta")
    if row.cycle_number is not None:
        line.append(f"#{row.cycle_number} ", style="blue")
    if row.worker_id and row.worker_id != row.source_id:
        line.append(f"@{row.worker_id} ", style="cyan")
    line.append(row.message.replace("\n", " "), style=MESSAGE_STYLES.get(level, ""))
    cause = exception_cause(row.exception)
    if cause:
        line.append("\n    -> " + cause, style=MESSAGE_STYLES.get(level, "red"))
    return line


def render_detail(row: LogRow) -> RenderableType:
    """Every column of the row, the whole message and exception, and the metadata."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold cyan", no_wrap=True)
    fields.add_column()
    level = Text(f"{row.log_level} (severity {row.severity_number})",
                 style=LEVEL_STYLES.get(row.log_level, ""))  # fmt: skip
    values: list[tuple[str, str | Text]] = [
        ("time", f"{row.timestamp.astimezone(UTC).isoformat()} (UTC)"),
        ("arrived", f"{row.observed_at.astimezone(UTC).isoformat()} (UTC)"),
        ("level", level),
        ("source", f"{row.source_type} / {row.source_id}"),
        ("logger", row.logger_name or "-"),
        ("worker", row.worker_id or "-"),
        ("task", row.task_id or "-"),
        ("cycle", "-" if row.cycle_number is None else str(row.cycle_number)),
        ("correlation", row.correlation_id or "-"),
        ("id", row.id),
    ]
    for name, value in values:
        fields.add_row(name, value)
    parts: list[RenderableType] = [fields, Text(""), Text("message", style="bold cyan")]
    parts.append(Text(row.message, style=MESSAGE_STYLES.get(row.log_level, "")))
    if row.exception:
        parts += [Text(""), Text("exception", style="bold cyan"), Text(row.exception, style="red")]
    parts += [Text(""), Text("metadata", style="bold cyan")]
    parts.append(
        Text(json.dumps(row.metadata, indent=2, ensure_ascii=False, default=str, sort_keys=True))
        if row.metadata
        else Text("{}", style="dim")
    )
    return Group(*parts)
