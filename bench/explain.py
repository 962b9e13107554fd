"""EXPLAIN what a read really runs, for benchmarks and for people asking "why slow?".

Lives with the benches (``bench/query.py`` imports it as ``explain``, its neighbour);
the plan tests import it as ``bench.explain``. It is not part of the installed package:
nothing at run time needs it.

A hub function's own plan hides the statement inside it, so this asks the database for
that statement's text and explains it with the call's own arguments as parameters:

* plpgsql readers (sql/functions/logs/) build their statement with
  ``func_query_logs_statement`` or ``func_log_errors_summary_statement``, the very
  builders they EXECUTE;
* a SQL-language function (``func_log_statistics``) is its body, whose argument names
  become ``$1, $2, ...``.

Nothing of the functions' SQL is copied here. The statement is PREPAREd (a custom plan:
parameters are planned as the constants they are, as ``EXECUTE ... USING`` does) and
DEALLOCATEd, so this needs a direct session, not a transaction-mode pooler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from orchestrator.db.calls import Call

# func_query_logs_statement's parameters $1..$12 (then $13, the rows to fetch, and $14,
# the ids to leave out, when given).
_PAGE_PARAMS = (
    ("since", "timestamptz"),
    ("until", "timestamptz"),
    ("min_level", "text"),
    ("levels", "jsonb"),
    ("source_type", "text"),
    ("source_id", "text"),
    ("worker_id", "text"),
    ("task_id", "uuid"),
    ("cycle_number", "integer"),
    ("search", "text"),
    ("after_timestamp", "timestamptz"),
    ("after_id", "uuid"),
)
_PAGED = {"func_query_logs": 100, "func_task_timeline": 1000, "func_worker_timeline": 1000}


@dataclass(frozen=True)
class PlanSummary:
    """What a plan touches: indexes used (``data_indexes``: on partitions holding rows),
    partitions scanned of how many, seq scans, and which scanned partitions are empty."""

    indexes: tuple[str, ...]
    data_indexes: tuple[str, ...]
    parent_indexes: tuple[str, ...]
    partitions: tuple[str, ...]
    partitions_total: int
    seq_scans: tuple[str, ...]
    empty: tuple[str, ...]
    plan: Mapping[str, Any]

    def describe(self) -> str:
        """One line: indexes (as declared on system_logs), partitions scanned / total,
        seq scans."""
        folded = self.parent_indexes
        full = [s for s in self.seq_scans if s not in self.empty]
        seq = f"; seq scans: {', '.join(full)}" if full else ""
        if len(full) < len(self.seq_scans):
            seq += f" (+{len(self.seq_scans) - len(full)} empty partitions)"
        return (
            f"indexes: {', '.join(folded) or 'none'}; partitions scanned "
            f"{len(self.partitions)}/{self.partitions_total}{seq}"
        )


def statement(conn: psycopg.Connection[Any], call: Call[Any]) -> tuple[str, list[str], list[Any]]:
    """The SQL text ``call`` executes inside its function, its parameter types and values."""
    args = dict(call.args)
    kind = conn.execute(
        "SELECT l.lanname, p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
        "WHERE p.oid = to_regproc(%s)",
        [f"public.{call.function}"],
    ).fetchone()
    if kind is not None and kind[0] == "sql":
        return _sql_body(conn, call.function, args)
    # A later migration may replace a reader: explain only what its body really builds.
    builder = (
        "func_log_errors_summary_statement"
        if call.function == "func_log_errors_summary"
        else (
            "func_query_logs_statement" if call.function == "func_query_logs" else "func_query_logs"
        )
    )
    if kind is None or builder not in kind[1]:
        raise ValueError(f"{call.function} does not run a statement this module knows how to build")
    if call.function in _PAGED:
        newest = bool(args.pop("newest_first", False))
        limit = int(args.pop("row_limit", _PAGED[call.function]))
        named = sql.SQL(", ").join(
            sql.SQL("{} => {}").format(sql.Identifier(k), sql.Literal(_text(v)))
            for k, v in args.items()
        )
        order = sql.SQL("newest_first => {}").format(sql.Literal(newest))
        text = _one(conn, sql.SQL("SELECT hub_internal.func_query_logs_statement({}{}{})").format(
            named, sql.SQL(", " if args else ""), order
        ))  # fmt: skip
        values = [_text(args.get(name)) for name, _ in _PAGE_PARAMS] + [limit + 1]
        types = [t for _, t in _PAGE_PARAMS] + ["integer"]
        if args.get("except_ids"):  # $14, the ids a tail leaves out
            values.append(list(args["except_ids"]))
            types.append("uuid[]")
        return text, types, values
    if call.function == "func_log_errors_summary":
        builder = "SELECT hub_internal.func_log_errors_summary_statement({}, {})"
        text = _one(conn, sql.SQL(builder).format(
            sql.Literal(args.get("source_type")), sql.Literal(args.get("worker_id"))
        ))  # fmt: skip
        until = args.get("until") or _one(conn, sql.SQL("SELECT now()::text"))
        values = [
            args["since"],
            until,
            args.get("source_type"),
            args.get("worker_id"),
            args.get("top", 20),
        ]
        return text, ["timestamptz", "timestamptz", "text", "text", "integer"], values
    raise ValueError(f"no known statement inside {call.function}")


def explain(
    conn: psycopg.Connection[Any], call: Call[Any], *, analyze: bool = False
) -> PlanSummary:
    """The plan of the statement ``call`` runs, summarised (``analyze`` runs it too)."""
    text, types, values = statement(conn, call)
    conn.execute(
        sql.SQL("PREPARE hub_explain ({}) AS ").format(sql.SQL(", ").join(map(sql.SQL, types)))
        + sql.SQL(text)
    )
    try:
        options = "FORMAT JSON, ANALYZE, BUFFERS" if analyze else "FORMAT JSON"
        raw = _one(conn, sql.SQL("EXPLAIN ({}) EXECUTE hub_explain ({})").format(
            sql.SQL(options), sql.SQL(", ").join(sql.Literal(_text(v)) for v in values)
        ))  # fmt: skip
    finally:
        conn.execute("DEALLOCATE hub_explain")
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = list(_nodes(plan))
    total = _one(conn, sql.SQL(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.system_logs'::regclass"
    ))  # fmt: skip
    scanned = sorted(
        {n["Relation Name"] for n in nodes if n.get("Relation Name", "").startswith("system_logs")}
    )
    empty: list[str] = _one(conn, sql.SQL(
        "SELECT coalesce(array_agg(relname::text), '{{}}') FROM pg_class"
        " WHERE relname = ANY({}) AND relkind = 'r' AND relpages = 0"
    ).format(sql.Literal(scanned)))  # fmt: skip
    used = sorted({n["Index Name"] for n in nodes if "Index Name" in n})
    parents = dict(
        conn.execute(
            "SELECT c.relname::text, p.relname::text FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE c.relname = ANY(%s) AND c.relkind = 'i'",
            [used],
        ).fetchall()
    )
    return PlanSummary(
        parent_indexes=tuple(sorted({parents.get(i, i) for i in used})),
        indexes=tuple(sorted({n["Index Name"] for n in nodes if "Index Name" in n})),
        data_indexes=tuple(
            sorted({index for index, rel in _index_scans(plan) if rel not in set(empty or ())})
        ),
        partitions=tuple(scanned),
        partitions_total=int(total),
        seq_scans=tuple(
            sorted({n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"})
        ),
        empty=tuple(empty or ()),
        plan=plan,
    )


def _sql_body(
    conn: psycopg.Connection[Any], function: str, args: dict[str, Any]
) -> tuple[str, list[str], list[Any]]:
    row = conn.execute(
        "SELECT p.prosrc, p.proargnames,"
        " array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t)"
        " FROM pg_proc p WHERE p.oid = to_regproc(%s)",
        [f"public.{function}"],
    ).fetchone()
    assert row is not None
    body, names, types = row
    for position, name in enumerate(names, start=1):  # names outside quotes only
        body = re.sub(rf"(?<!['\w]){re.escape(name)}(?![\w'])", f"${position}", body)
    values = [_text(args.get(name)) for name in names]
    return body.strip().rstrip(";"), list(types), values


def _index_scans(plan: Mapping[str, Any], parent: str = "") -> Iterator[tuple[str, str]]:
    """(index, relation) of every index scan; a bitmap index scan's relation is its parent's."""
    relation = plan.get("Relation Name", parent)
    if "Index Name" in plan:
        yield plan["Index Name"], relation
    for child in plan.get("Plans", []):
        yield from _index_scans(child, relation)


def _nodes(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _text(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


def _one(conn: psycopg.Connection[Any], query: sql.SQL | sql.Composed) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]
