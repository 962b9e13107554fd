"""How ``orchestrator logs --stats`` and ``--errors-summary`` print, in every format.

:func:`summary_document` is the one JSON rendering of both (``--format json``, and the
source of every other format), so a key added there reaches every output. ``jsonl``
and ``csv`` flatten it into one row per line of the text tables, each naming its
``section`` (``total``, ``by_level``, ``by_source``, ``by_worker``, ``top_messages``),
for ``jq`` and spreadsheets. Levels are listed in severity order, times as every text
output prints them, and a grouped error message shows its cause (the last line of its
most recent exception) under it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from orchestrator.cli.logs_render import RowWriter, cell_line, clock_text, fit_table
from orchestrator.logs.levels import LEVELS

# The columns of the flattened rows (csv header, jsonl keys), in this order.
ROW_COLUMNS = (
    "section",
    "log_level",
    "source_type",
    "source_id",
    "worker_id",
    "message",
    "cause",
    "count",
    "errors",
    "first_seen",
    "last_seen",
    "since",
    "until",
)
_SECTIONS = ("by_source", "by_worker", "top_messages")


def by_severity(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts per level in severity order (DEBUG .. CRITICAL), unknown names last."""
    known = {level: counts[level] for level in LEVELS if level in counts}
    return known | {k: v for k, v in counts.items() if k not in known}


def summary_document(action: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of ``--stats`` (``action`` "stats") or ``--errors-summary``:
    the database's result with its levels in severity order. One function, so a key
    added to the summaries is added once, for every format."""
    document = dict(value)
    document["by_level"] = by_severity(value.get("by_level") or {})
    if action == "errors_summary":
        document["top_messages"] = [
            {"cause": None, **message} for message in value.get("top_messages") or []
        ]
    return document


def summary_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The document as flat rows (see the module docstring)."""
    total: dict[str, Any] = {
        "section": "total",
        "count": document["total"],
        "since": document["since"],
        "until": document["until"],
    }
    if "errors" in document:
        total["errors"] = document["errors"]
    rows = [total]
    rows += [
        {"section": "by_level", "log_level": level, "count": n}
        for level, n in document["by_level"].items()
    ]
    for section in _SECTIONS:
        rows += [{"section": section, **entry} for entry in document.get(section) or []]
    return rows


def write_summary(
    out: TextIO,
    action: str,
    value: Mapping[str, Any],
    fmt: str,
    *,
    colors: RowWriter | None = None,
    width: int | None = None,
) -> None:
    """Writes a summary in ``fmt`` (table = titled text tables fitted to ``width``)."""
    document = summary_document(action, value)
    if fmt == "json":
        out.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    elif fmt == "jsonl":
        for row in summary_rows(document):
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, ROW_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(summary_rows(document))
    elif action == "errors_summary":
        out.write(errors_text(document, colors=colors, width=width))
    else:
        out.write(stats_text(document, width=width))
    out.flush()


def _section(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    width: int | None,
    free: str | None = None,
) -> str:
    if not rows:
        return f"{title}: none"
    body = [
        [
            clock_text(r.get(c))
            if c in ("first_seen", "last_seen")
            else (str(r.get(c, "")) if c == free else cell_line(str(r.get(c, "")), 100))
            for c in columns
        ]
        for r in rows
    ]
    if free is None:
        return f"{title}:\n" + fit_table(body, columns, len(columns), None)
    at = list(columns).index(free)
    return f"{title}:\n" + fit_table(body, columns, at, width, lines=True)


def _window(document: Mapping[str, Any]) -> str:
    return f"from {clock_text(document['since'])} to {clock_text(document['until'])} (UTC)"


def errors_text(
    summary: Mapping[str, Any], *, colors: RowWriter | None = None, width: int | None = None
) -> str:
    """An errors summary as titled tables; a message's cause on the line below it."""
    levels = ", ".join(
        f"{colors.level(k) if colors else k} {v}" for k, v in summary["by_level"].items()
    )
    head = f"Errors {_window(summary)}: {summary['total']}" + (f" ({levels})" if levels else "")

    def title(name: str, key: str, distinct: str) -> str:
        return f"{name} (top {len(summary[key])} of {summary.get(distinct, '?')})"

    messages = [
        {
            **m,
            "message": cell_line(m["message"], 1000)
            + (f"\n-> {m['cause']}" if m.get("cause") else ""),
        }
        for m in summary["top_messages"]
    ]
    parts = [
        _section(
            title("By source", "by_source", "distinct_sources"),
            summary["by_source"],
            ("source_type", "source_id", "count"),
            width,
        ),
        _section(
            title("By worker", "by_worker", "distinct_workers"),
            summary["by_worker"],
            ("worker_id", "count"),
            width,
        ),
        _section(
            title("Top messages", "top_messages", "distinct_messages"),
            messages,
            ("count", "log_level", "source_type", "first_seen", "last_seen", "message"),
            width,
            free="message",
        ),
    ]
    return head + "\n\n" + "\n\n".join(parts) + "\n"


def stats_text(stats: Mapping[str, Any], *, width: int | None = None) -> str:
    """Statistics (func_log_statistics' shape) as titled tables."""
    head = f"Logs {_window(stats)}: {stats['total']} ({stats['errors']} ERROR or CRITICAL)\n\n"
    by_level = [{"level": k, "count": v} for k, v in stats["by_level"].items()]
    parts = [
        _section("By level", by_level, ("level", "count"), width),
        _section(
            "By source",
            stats["by_source"],
            ("source_type", "source_id", "count", "errors", "last_seen"),
            width,
        ),
        _section(
            "By worker", stats["by_worker"], ("worker_id", "count", "errors", "last_seen"), width
        ),
    ]
    return head + "\n\n".join(parts) + "\n"
