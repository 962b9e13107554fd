"""The direct PostgreSQL transport: COPY for clean batches, staged otherwise.

A batch goes by binary COPY straight into ``system_logs`` when none of its entries
needs the database's repair or rejection rules (:func:`direct_rows`, the common case
and the fastest path), else through the staged functions of ``sql/functions/logs/ingest.sql``,
which apply those rules. The rules themselves live in SQL; what :func:`direct_rows` checks is only
whether a row is one those rules would leave exactly as it is, and
``tests/integration/test_ingest_parity.py`` feeds the same hostile inputs to this path
and to ``func_insert_logs_batch`` and compares the stored rows column by column, so the
two cannot drift apart unnoticed. The psycopg work is :class:`~orchestrator.db.log_copy.
LogCopier`'s.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any

from orchestrator.db.jsonsafe import dumps_json
from orchestrator.db.log_copy import LogCopier
from orchestrator.logs.calls import InsertResult, insert_result
from orchestrator.logs.levels import SEVERITY
from orchestrator.logs.sinks import abandoned

# What func_insert_logs_batch stores unchanged; a row outside these limits takes the
# staged path, where the database applies its rules (sql/functions/logs/ingest.sql).
MESSAGE_MAX, EXCEPTION_MAX = 32768, 65536
SOURCE_TYPE_MAX, SOURCE_ID_MAX, LOGGER_MAX, WORKER_MAX, CORRELATION_MAX = 64, 255, 255, 255, 128
# The database drops metadata whose jsonb takes more than 64 KiB; jsonb can take up to
# about four bytes per byte of JSON text, so text up to a quarter of that is surely kept.
METADATA_TEXT_MAX = 65536 // 4
# The database's window is 30 days back and 1 hour ahead of its clock; a little
# narrower here, so a row this side accepts is never one the database would clamp.
PAST_SECONDS, FUTURE_SECONDS = 29 * 86400.0, 3000.0
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def epoch_microseconds(seconds: float) -> int:
    """Whole microseconds of a Unix time. Both paths of the sink turn an entry's float
    time into this same integer, so a batch retried on the other path carries the same
    ("timestamp", id) key and is recognised as a duplicate (float rounding in Python and
    in PostgreSQL can differ by one microsecond)."""
    return round(seconds * 1_000_000)


def _stage_row(ord_: int, entry: dict[str, Any]) -> tuple[Any, ...]:
    """An entry built by the handler (see snapshot.to_entry) as a staging-table row: its
    values as the JSON path would hand them to the rules (a cycle number as its JSON
    text, so 2**32 + 42 or true are judged, and kept, as there), the time as exact
    microseconds beside its JSON text (the text is what a clamp keeps)."""
    at, cycle = entry.get("timestamp"), entry.get("cycle_number")
    exact = None
    if (type(at) is float or type(at) is int) and math.isfinite(at):
        exact = epoch_microseconds(at)
    return (
        ord_,
        entry.get("id"),
        dumps_json(at) if exact is not None or not (at is None or type(at) is str) else at,
        exact,
        entry.get("source_type"),
        entry.get("source_id"),
        entry.get("log_level"),
        entry.get("logger_name"),
        entry.get("message"),
        entry.get("task_id"),
        entry.get("worker_id"),
        None if cycle is None else cycle if type(cycle) is str else dumps_json(cycle),
        entry.get("correlation_id"),
        entry.get("exception"),
        dumps_json(entry.get("metadata")),
    )


def _trimmed(text: Any, limit: int) -> str | None:
    """``text`` cut to ``limit`` when it is what the database keeps of it (non-blank,
    no leading or trailing spaces, which ``btrim`` would remove), else None."""
    if type(text) is not str or not text or text[0] == " " or text[-1] == " ":
        return None
    return text[:limit]


def direct_rows(
    entries: Sequence[dict[str, Any]], server_offset: float
) -> list[tuple[Any, ...]] | None:
    """The batch as system_logs rows, or None when any entry needs the database's repair
    or rejection rules (text too long, malformed id or task id, clock far from the
    server's, unknown level, odd cycle number or metadata): those batches take the
    staged path, where the rules live. ``server_offset`` is the server's clock minus
    ours: the window is the server's, and the time stored is the entry's own. Values
    stay in the shapes the entries have (UUID text, integer microseconds, JSON text):
    the connection's dumpers (orchestrator.db.binary) write them as they are."""
    now = time.time() + server_offset
    low, high = now - PAST_SECONDS, now + FUTURE_SECONDS
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for e in entries:
        message, exception, task = e.get("message"), e.get("exception"), e.get("task_id")
        level, at, cycle = e.get("log_level"), e.get("timestamp"), e.get("cycle_number")
        metadata, log_id = e.get("metadata") or {}, e.get("id")
        source_type = _trimmed(e.get("source_type"), SOURCE_TYPE_MAX)
        source_id = _trimmed(e.get("source_id"), SOURCE_ID_MAX)
        if (
            type(message) is not str
            or len(message) > MESSAGE_MAX
            or (exception is not None and len(exception) > EXCEPTION_MAX)
            or (type(at) is not float and type(at) is not int) or not low < at < high
            or level not in SEVERITY
            or (task is not None and not _UUID_TEXT.fullmatch(task))
            or type(log_id) is not str or not _UUID_TEXT.fullmatch(log_id)
            or (cycle is not None and (type(cycle) is not int or not INT32_MIN <= cycle <= INT32_MAX))  # noqa: E501
            or source_type is None or source_id is None
            or type(metadata) is not dict
        ):  # fmt: skip
            return None
        metadata_text = dumps_json(metadata)
        if len(metadata_text) > METADATA_TEXT_MAX:
            return None
        logger, worker = e.get("logger_name"), e.get("worker_id")
        correlation = e.get("correlation_id")
        append((
            log_id, epoch_microseconds(at), source_type, source_id, level, SEVERITY[level],
            logger[:LOGGER_MAX] if logger is not None else None, message, task,
            worker[:WORKER_MAX] if worker else None, cycle,
            correlation[:CORRELATION_MAX] if correlation else None, exception, metadata_text,
        ))  # fmt: skip
    return rows


class PostgresSink:
    """Sends batches over one psycopg connection (a :class:`LogCopier`), reconnecting
    after failures; raises the hub's errors (see :mod:`orchestrator.logs.sinks`)."""

    def __init__(self, conninfo: str, label: str = "PostgreSQL") -> None:
        self.label = label
        self.copier = LogCopier(conninfo, label)

    def send(self, entries: Sequence[dict[str, Any]]) -> InsertResult:
        """Direct COPY when the batch needs nothing from the database's rules, else (and
        after a unique violation: a retry of stored rows) the staged path."""
        if self.copier.direct_allowed:
            rows = direct_rows(entries, self.copier.server_offset())
            if rows is not None and self.copier.copy_direct(rows):
                return InsertResult(True, len(rows), 0)
        return self.send_staged(entries)

    def send_staged(self, entries: Sequence[dict[str, Any]]) -> InsertResult:
        """The staged path alone: COPY into the staging table, then the SQL rules."""
        rows = (_stage_row(i, e) for i, e in enumerate(entries))
        return insert_result(self.copier.insert_staged(rows))

    def check(self) -> None:
        """Raises a hub error unless the database is reachable and migrated."""
        self.copier.check()

    def close(self) -> None:
        """Closes the connection."""
        self.copier.close()

    def abandon(self) -> None:
        """Drops the connection without closing it (a forked child)."""
        abandoned.append(self.copier.abandon())
