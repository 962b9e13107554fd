"""How ``orchestrator logs`` prints rows: tables (tabulate), JSON, JSON lines and CSV,
with colours by level (colorama) only on a terminal unless asked.

Rows are written as they come, page by page, so an export of any size streams in
constant memory; only a table waits for its page, to size its columns. A table fits
the terminal it is printed on: every column keeps its width and the message column
wraps in what is left. Every time in text output has one form, :func:`clock_text`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import colorama
from tabulate import tabulate

from orchestrator.query.model import LogRow

FORMATS = ("table", "json", "jsonl", "csv")
COLUMNS = tuple(LogRow.__dataclass_fields__)
_LEVEL_STYLE = {
    "DEBUG": colorama.Style.DIM,
    "INFO": colorama.Fore.GREEN,
    "WARNING": colorama.Fore.YELLOW,
    "ERROR": colorama.Fore.RED,
    "CRITICAL": colorama.Style.BRIGHT + colorama.Fore.WHITE + colorama.Back.RED,
}
_MESSAGE_WIDTH = 160  # a message cell off a terminal: cut here, on one line
_MESSAGE_TEXT = 1000  # a message cell on a terminal: cut here, then wrapped
_MIN_MESSAGE_COLUMN = 20
# What --export FILE means when --format is not given; other extensions get CSV.
EXPORT_FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def use_color(choice: str, stream: TextIO) -> bool:
    """``always``/``never`` as said; ``auto`` = a terminal and no ``NO_COLOR`` variable."""
    if choice == "always":
        colorama.just_fix_windows_console()
        return True
    if choice == "never":
        return False
    wanted = stream.isatty() and not os.environ.get("NO_COLOR")
    if wanted:
        colorama.just_fix_windows_console()
    return wanted


def export_format(path: Path, given: str | None) -> str:
    """The format of an ``--export`` file: ``--format`` when given, else its extension's
    (.json, .jsonl/.ndjson, .csv), else CSV; a table cannot stream, so it is CSV too."""
    fmt = given or EXPORT_FORMATS.get(path.suffix.lower(), "csv")
    return "csv" if fmt == "table" else fmt


def terminal_width(stream: TextIO) -> int | None:
    """The width tables must fit: the terminal's, or None when not printing to one."""
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size().columns


def clock_text(value: datetime | str | None) -> str:
    """A time as every text output of the hub prints it: ``2026-12-01 08:00:00.123``,
    UTC (the zone of the store), to the millisecond."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _when(row: LogRow) -> str:
    return clock_text(row.timestamp)


def cell_line(text: str, width: int = _MESSAGE_WIDTH) -> str:
    """``text`` on one line (newlines as ⏎), cut to ``width`` characters with …"""
    line = text.replace("\r", " ").replace("\n", " ⏎ ")
    return line if len(line) <= width else line[: width - 1] + "…"


def fit_table(
    body: Sequence[Sequence[Any]],
    headers: Sequence[str],
    free: int,
    width: int | None,
    *,
    visible: Any = None,
    lines: bool = False,
) -> str:
    """A tabulate table whose column ``free`` (the message) wraps so the table fits
    ``width`` columns; every other column keeps its width. ``width`` None: one line per
    row, the free column cut at 160 characters. ``visible(cell)`` is a cell's printed
    text when it holds colour codes; ``lines``: each line of a free cell is kept as a
    line of its own (a message and its cause) instead of being joined with ⏎."""
    shown = visible or str

    def free_cell(value: Any, cut: int) -> str:
        parts = str(value).split("\n") if lines else [str(value)]
        return "\n".join(cell_line(part, cut) for part in parts)

    if width is None:
        body = [
            [free_cell(c, _MESSAGE_WIDTH) if i == free else c for i, c in enumerate(row)]
            for row in body
        ]
        return tabulate(body, headers=list(headers), disable_numparse=True)
    fixed = 0  # tabulate's simple format: a column is 2 wider than its header at least
    for i, header in enumerate(headers):
        if i != free:
            fixed += max([len(header) + 2, *(len(shown(row[i])) for row in body)]) + 2
    room = max(_MIN_MESSAGE_COLUMN, width - fixed)
    body = [
        [free_cell(c, _MESSAGE_TEXT) if i == free else c for i, c in enumerate(row)] for row in body
    ]
    limits: list[int | None] = [room if i == free else None for i in range(len(headers))]
    return tabulate(body, headers=list(headers), disable_numparse=True, maxcolwidths=limits)


class RowWriter:
    """Writes log rows to ``out`` in one of :data:`FORMATS`; call :meth:`close` at the end."""

    def __init__(
        self, out: TextIO, fmt: str, *, color: bool = False, width: int | None = None
    ) -> None:
        self.out = out
        self.fmt = fmt
        self.color = color
        self.width = width
        self.count = 0
        self._csv: Any = None
        self._opened_json = False

    def level(self, name: str) -> str:
        """The level name, coloured when colours are on."""
        if not self.color:
            return name
        return f"{_LEVEL_STYLE.get(name, '')}{name}{colorama.Style.RESET_ALL}"

    def write(self, rows: Sequence[LogRow]) -> None:
        """Writes one batch of rows (a table gets one table per batch)."""
        if self.fmt == "table":
            if rows:
                self.out.write(self.table(rows) + "\n")
        elif self.fmt == "jsonl":
            for row in rows:
                self.out.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
        elif self.fmt == "json":
            for row in rows:
                self.out.write(("[\n  " if not self._opened_json else ",\n  ") + _dumps(row))
                self._opened_json = True
        else:
            if self._csv is None:
                self._csv = csv.writer(self.out)
                self._csv.writerow(COLUMNS)
            for row in rows:
                values = row.to_json()
                values["metadata"] = json.dumps(values["metadata"], ensure_ascii=False)
                self._csv.writerow([values[c] for c in COLUMNS])
        self.count += len(rows)
        self.out.flush()

    def line(self, row: LogRow) -> str:
        """One row as a single terminal line (the live tail's form)."""
        where = row.source_type + "/" + row.source_id
        tags = "".join(
            f" [{name} {value}]"
            for name, value in (("task", row.task_id), ("cycle", row.cycle_number))
            if value is not None
        )
        pad = " " * max(0, 8 - len(row.log_level))  # padded outside the colour codes
        return (
            f"{_when(row)} {self.level(row.log_level)}{pad} {where}{tags} {cell_line(row.message)}"
        )

    def write_lines(self, rows: Iterable[LogRow]) -> None:
        """Writes rows one per line: a table in a tail, JSON lines or CSV otherwise."""
        batch = list(rows)
        if self.fmt == "table":
            for row in batch:
                self.out.write(self.line(row) + "\n")
            self.count += len(batch)
            self.out.flush()
        else:
            self.write(batch)

    def table(self, rows: Sequence[LogRow]) -> str:
        """The rows as a tabulate table: time, level, source, worker, task, cycle,
        message; worker, task and cycle only when some row of the batch has one, so
        the message keeps more room."""
        body = [
            [
                _when(r),
                self.level(r.log_level),
                f"{r.source_type}/{r.source_id}",
                r.worker_id or "",
                r.task_id or "",
                "" if r.cycle_number is None else str(r.cycle_number),
                r.message + (" [exception]" if r.exception else ""),
            ]
            for r in rows
        ]
        headers = ["time (UTC)", "level", "source", "worker", "task", "cycle", "message"]
        keep = [i for i in range(len(headers)) if i not in (3, 4, 5) or any(b[i] for b in body)]
        return fit_table(
            [[b[i] for i in keep] for b in body],
            [headers[i] for i in keep],
            len(keep) - 1,
            self.width,
            visible=_plain_level,
        )

    def close(self) -> None:
        """Finishes the document (a JSON array needs its closing bracket)."""
        if self.fmt == "json":
            self.out.write("\n]\n" if self._opened_json else "[]\n")
        self.out.flush()


def _dumps(row: LogRow) -> str:
    return json.dumps(row.to_json(), ensure_ascii=False)


def _plain_level(cell: Any) -> str:
    """A cell without colorama's codes (the level column is the only coloured one)."""
    text = str(cell)
    for code in set(_LEVEL_STYLE.values()) | {colorama.Style.RESET_ALL}:
        text = text.replace(code, "")
    return text
