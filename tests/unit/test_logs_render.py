"""How `orchestrator logs` prints, without a database: tables that fit the terminal
by wrapping the message column only, one form for every time, levels in severity
order, the export format read from the file's extension, and a message's cause."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.cli.logs_render import RowWriter, clock_text, export_format
from orchestrator.cli.logs_summary import errors_text, stats_text, summary_document, summary_rows
from orchestrator.query import LogRow

WHEN = datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}")


def row(message: str, **fields) -> LogRow:
    values = {
        "id": "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a", "timestamp": WHEN, "observed_at": WHEN,
        "source_type": "worker", "source_id": "gpu-1", "log_level": "ERROR",
        "severity_number": 17, "logger_name": None, "message": message, "task_id": None,
        "worker_id": "gpu-1", "cycle_number": 4, "correlation_id": None, "exception": None,
    }  # fmt: skip
    values.update(fields)
    return LogRow(**values)


def test_a_table_fits_the_terminal_by_wrapping_only_the_message():
    """At 90 columns every line fits, every other column is whole, and the message is
    all there, wrapped; colours do not count as width."""
    long = "CUDA out of memory while allocating the attention buffers of layer " * 3
    out = io.StringIO()
    writer = RowWriter(out, "table", color=True, width=90)
    writer.write([row(long), row("short")])
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    lines = plain.splitlines()
    assert max(len(line) for line in lines) <= 90
    assert "2026-12-01 08:00:00.123" in lines[2] and "worker/gpu-1" in lines[2]
    words = " ".join(line[lines[0].index("message") :].strip() for line in lines[2:-1])
    assert " ".join(long.split()) in " ".join(words.split())


def test_off_a_terminal_a_row_stays_on_one_line():
    """Piped (no width), a table row is one line, the message cut with an ellipsis."""
    out = io.StringIO()
    RowWriter(out, "table").write([row("x" * 500)])
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[2].endswith("…")


def test_every_time_has_one_form():
    """Rows, windows and first/last seen: 2026-12-01 08:00:00.123, in UTC."""
    assert clock_text(WHEN) == "2026-12-01 08:00:00.123"
    assert clock_text("2026-12-01T09:00:00.123456+01:00") == "2026-12-01 08:00:00.123"
    stats = {
        "since": "2026-12-01T00:00:00+00:00", "until": "2026-12-02T00:00:00+00:00",
        "total": 3, "errors": 1, "by_level": {"INFO": 1, "ERROR": 1, "DEBUG": 1},
        "by_source": [{"source_type": "worker", "source_id": "gpu-1", "count": 3, "errors": 1,
                       "last_seen": "2026-12-01T08:00:00.123456+00:00"}],
        "by_worker": [],
    }  # fmt: skip
    text = stats_text(summary_document("stats", stats))
    assert "T0" not in text and "+00:00" not in text
    assert "Logs from 2026-12-01 00:00:00.000 to 2026-12-02 00:00:00.000 (UTC)" in text
    assert "2026-12-01 08:00:00.123" in text
    assert [line.split()[0] for line in text.split("By level:")[1].splitlines()[3:6]] == [
        "DEBUG", "INFO", "ERROR"
    ]  # fmt: skip


def test_levels_in_severity_order_in_every_format():
    """The database's jsonb orders keys by length; the documents put DEBUG..CRITICAL."""
    doc = summary_document(
        "stats",
        {"since": "x", "until": "y", "total": 4, "errors": 2,
         "by_level": {"INFO": 1, "ERROR": 1, "DEBUG": 1, "CRITICAL": 1}, "by_source": [],
         "by_worker": []},
    )  # fmt: skip
    assert list(doc["by_level"]) == ["DEBUG", "INFO", "ERROR", "CRITICAL"]
    assert [r["log_level"] for r in summary_rows(doc) if r["section"] == "by_level"] == list(
        doc["by_level"]
    )


def test_a_grouped_message_shows_its_cause_below_it():
    """The cause line follows its message in the table, and fits the width."""
    summary = summary_document(
        "errors_summary",
        {"since": "2026-12-01T00:00:00+00:00", "until": "2026-12-01T06:00:00+00:00", "total": 2,
         "by_level": {"ERROR": 2}, "by_source": [], "by_worker": [],
         "top_messages": [{"message": "Task failed", "cause": "MemoryError: CUDA out of memory",
                           "count": 2, "first_seen": "2026-12-01T01:00:00+00:00",
                           "last_seen": "2026-12-01T02:00:00+00:00", "log_level": "ERROR",
                           "source_type": "worker"}]},
    )  # fmt: skip
    lines = errors_text(summary, width=140).splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith("Task failed"))
    assert lines[at + 1].strip() == "-> MemoryError: CUDA out of memory"
    assert all(TIME.fullmatch(t) for t in re.findall(r"\d{4}-\d\d-\d\d [\d:.]+", "\n".join(lines)))


def test_export_format_from_the_extension():
    """--format wins; else .json/.jsonl/.ndjson/.csv; anything else (and table) is CSV."""
    assert export_format(Path("a.json"), None) == "json"
    assert export_format(Path("a.JSONL"), None) == "jsonl"
    assert export_format(Path("a.ndjson"), None) == "jsonl"
    assert export_format(Path("a.csv"), None) == "csv"
    assert export_format(Path("a.log"), None) == "csv"
    assert export_format(Path("a.json"), "jsonl") == "jsonl"
    assert export_format(Path("a.json"), "table") == "csv"
