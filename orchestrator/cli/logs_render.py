"""How ``orchestrator logs`` prints: tables (tabulate), JSON, JSON lines and CSV, with
colours by level (colorama) only on a terminal unless asked.

Rows are written as they come, page by page, so an export of any size streams in
constant memory; only a table waits for its page, to size its columns.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
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
_MESSAGE_WIDTH = 160


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


def _when(row: LogRow) -> str:
    return row.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _cell_line(text: str, width: int = _MESSAGE_WIDTH) -> str:
    line = text.replace("\r", " ").replace("\n", " ⏎ ")
    return line if len(line) <= width else line[: width - 1] + "…"


class RowWriter:
    """Writes log rows to ``out`` in one of :data:`FORMATS`; call :meth:`close` at the end."""

    def __init__(self, out: TextIO, fmt: str, *, color: bool = False) -> None:
        self.out = out
        self.fmt = fmt
        self.color = color
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
            f"{_when(row)} {self.level(row.log_level)}{pad} {where}{tags} {_cell_line(row.message)}"
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
        """The rows as a tabulate table: time, level, source, worker, task, cycle, message."""
        body = [
            (
                _when(r),
                self.level(r.log_level),
                f"{r.source_type}/{r.source_id}",
                r.worker_id or "",
                r.task_id or "",
                "" if r.cycle_number is None else r.cycle_number,
                _cell_line(r.message) + (" [exception]" if r.exception else ""),
            )
            for r in rows
        ]
        headers = ["time (UTC)", "level", "source", "worker", "task", "cycle", "message"]
        return tabulate(body, headers=headers, disable_numparse=True)

    def close(self) -> None:
        """Finishes the document (a JSON array needs its closing bracket)."""
        if self.fmt == "json":
            self.out.write("\n]\n" if self._opened_json else "[]\n")
        self.out.flush()


def _dumps(row: LogRow) -> str:
    return json.dumps(row.to_json(), ensure_ascii=False)


def print_json(out: TextIO, value: Any) -> None:
    """A value as indented JSON."""
    out.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def _section(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return f"{title}: none"
    body = [[_cell_line(str(r.get(c, "")), 100) for c in columns] for r in rows]
    return f"{title}:\n" + tabulate(body, headers=list(columns), disable_numparse=True)


def summary_text(summary: Mapping[str, Any], *, colorize: RowWriter | None = None) -> str:
    """An errors summary (func_log_errors_summary's shape) as titled tables."""
    buffer = io.StringIO()
    levels = ", ".join(
        f"{colorize.level(k) if colorize else k} {v}" for k, v in summary["by_level"].items()
    )
    buffer.write(
        f"Errors from {summary['since']} to {summary['until']}: {summary['total']}"
        + (f" ({levels})" if levels else "")
        + "\n\n"
    )

    def title(name: str, key: str, distinct: str) -> str:
        return f"{name} (top {len(summary[key])} of {summary.get(distinct, '?')})"

    parts = [
        (
            title("By source", "by_source", "distinct_sources"),
            summary["by_source"],
            ("source_type", "source_id", "count"),
        ),
        (
            title("By worker", "by_worker", "distinct_workers"),
            summary["by_worker"],
            ("worker_id", "count"),
        ),
        (
            title("Top messages", "top_messages", "distinct_messages"),
            summary["top_messages"],
            ("count", "log_level", "source_type", "first_seen", "last_seen", "message"),
        ),
    ]
    buffer.write("\n\n".join(_section(t, r, c) for t, r, c in parts) + "\n")
    return buffer.getvalue()


def stats_text(stats: Mapping[str, Any]) -> str:
    """Statistics (func_log_statistics' shape) as titled tables."""
    head = (
        f"Logs from {stats['since']} to {stats['until']}: {stats['total']} "
        f"({stats['errors']} ERROR or CRITICAL)\n\n"
    )
    by_level = [{"level": k, "count": v} for k, v in stats["by_level"].items()]
    parts = [
        _section("By level", by_level, ("level", "count")),
        _section(
            "By source",
            stats["by_source"],
            ("source_type", "source_id", "count", "errors", "last_seen"),
        ),
        _section("By worker", stats["by_worker"], ("worker_id", "count", "errors", "last_seen")),
    ]
    return head + "\n\n".join(parts) + "\n"
