"""PostgREST's table reads, for the stand-in: ``GET /rest/v1/<table or view>?...``.

The seed orchestrator's own clients (its ``scripts/query_logs.py``, its dashboard, its
workers list) read ``system_logs``, ``workers`` and the views with supabase-py's query
builder, which sends these reads; the stand-in answers them from the real database as
PostgREST would. The subset it speaks:

- ``select=a,b`` (column names, blanks around them ignored) or ``*`` (the default);
- filters ``col=op.value`` (a column may repeat: ``timestamp=gte.x&timestamp=lte.y``) with
  ``eq neq gt gte lt lte like ilike`` (``*`` or ``%`` as the wildcard), ``is`` (``null``,
  ``true``, ``false``, ``unknown``), ``in.(a,b,"c,d")``, each optionally after ``not.``;
  the value goes to PostgreSQL untyped, so it is read as the column's type (a timestamp
  without a zone is UTC: the stand-in's sessions run in UTC, as Supabase's do);
- ``order=col[.asc|.desc][.nullsfirst|.nullslast],...``, ``limit``, ``offset``; the
  server's ``max-rows`` caps every read, silently, whatever ``limit`` asks;
- the query string is decoded as PostgREST decodes it: ``%XX`` escapes, but ``+`` stays
  a plus sign (so a ``+00:00`` offset survives when a client leaves it unescaped).

Not reproduced: embedded resources, aliases, casts, JSON paths, ``or``/``and``, full-text
operators, ``Prefer: count=...`` (no total in ``Content-Range``), ``Range`` headers.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from psycopg import sql

RESERVED = {"select", "order", "limit", "offset"}
_COMPARISONS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
                "like": "LIKE", "ilike": "ILIKE"}  # fmt: skip
_IS = {"null": "NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}


class ReadRefused(Exception):
    """A read PostgREST would refuse before running it: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Filter:
    """``column op value`` (``negated``: under ``not.``)."""

    column: str
    operator: str
    value: Any
    negated: bool = False


@dataclass(frozen=True)
class Ordering:
    """One ``order`` term."""

    column: str
    descending: bool = False
    nulls: str | None = None  # "FIRST", "LAST" or PostgreSQL's default


@dataclass
class TableRead:
    """A parsed ``GET /rest/v1/<relation>?...``."""

    relation: str
    columns: list[str] | None = None  # None: every column (select=*)
    filters: list[Filter] = field(default_factory=list)
    order: list[Ordering] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


def query_pairs(query: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` as pairs, in order, repeats kept; ``+`` is not a space (PostgREST)."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def parse_read(relation: str, query: str) -> TableRead:
    """The read a request asks for, or :class:`ReadRefused` (400 ``PGRST100``)."""
    read = TableRead(relation)
    for name, value in query_pairs(query):
        if name == "select":
            names = [c.strip() for c in value.split(",") if c.strip()]
            read.columns = None if names in ([], ["*"]) else names
        elif name == "order":
            read.order = [_ordering(term) for term in value.split(",") if term.strip()]
        elif name in ("limit", "offset"):
            if not value.isdigit():
                raise ReadRefused(400, "PGRST100", f'"{value}" is not a valid {name}')
            setattr(read, name, int(value))
        else:
            read.filters.append(_filter(name, value))
    return read


def _ordering(term: str) -> Ordering:
    column, *modifiers = term.strip().split(".")
    descending, nulls = False, None
    for modifier in modifiers:
        if modifier in ("asc", "desc"):
            descending = modifier == "desc"
        elif modifier in ("nullsfirst", "nullslast"):
            nulls = modifier.removeprefix("nulls").upper()
        else:
            raise ReadRefused(400, "PGRST100", f"failed to parse order ({term})")
    return Ordering(column, descending, nulls)


def _filter(column: str, text: str) -> Filter:
    negated = text.startswith("not.")
    operator, dot, value = text.removeprefix("not.").partition(".")
    if not dot or operator not in (*_COMPARISONS, "is", "in"):
        raise ReadRefused(
            400, "PGRST100", f'failed to parse filter ({text}): the stand-in reads only '
            f'{", ".join((*_COMPARISONS, "is", "in"))}, optionally after not.')  # fmt: skip
    parsed: Any = value
    if operator in ("like", "ilike"):
        parsed = value.replace("*", "%")
    elif operator == "is":
        if value.lower() not in _IS:
            raise ReadRefused(400, "PGRST100", f"failed to parse filter (is.{value})")
        parsed = _IS[value.lower()]
    elif operator == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise ReadRefused(400, "PGRST100", f"failed to parse filter (in.{value})")
        inner = value[1:-1]
        parsed = next(csv.reader([inner])) if inner else []
    return Filter(column, operator, parsed, negated)


def read_statement(read: TableRead, max_rows: int | None) -> tuple[sql.Composed, list[Any]]:
    """``SELECT`` of the read as one JSON array text, and its parameters."""
    params: list[Any] = []
    conditions: list[sql.Composable] = []
    for f in read.filters:
        column = sql.Identifier(f.column)
        if f.operator == "is":
            condition: sql.Composable = sql.SQL("{} IS {}").format(column, sql.SQL(f.value))
        elif f.operator == "in":
            condition = (
                sql.SQL("{} IN ({})").format(
                    column, sql.SQL(", ").join(sql.Placeholder() for _ in f.value)
                )
                if f.value
                else sql.SQL("false")
            )
            params.extend(f.value)
        else:
            op = sql.SQL(_COMPARISONS[f.operator])
            condition = sql.SQL("{} {} {}").format(column, op, sql.Placeholder())
            params.append(f.value)
        conditions.append(sql.SQL("NOT ({})").format(condition) if f.negated else condition)
    columns = (
        sql.SQL("*")
        if read.columns is None
        else sql.SQL(", ").join(sql.Identifier(c) for c in read.columns)
    )
    inner = sql.SQL("SELECT {} FROM public.{}").format(columns, sql.Identifier(read.relation))
    if conditions:
        inner += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
    if read.order:
        inner += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(
                sql.Identifier(o.column),
                sql.SQL("DESC" if o.descending else "ASC"),
                sql.SQL(f" NULLS {o.nulls}" if o.nulls else ""),
            )
            for o in read.order
        )
    limits = [n for n in (read.limit, max_rows) if n is not None]
    if limits:
        inner += sql.SQL(" LIMIT {}").format(sql.Literal(min(limits)))
    if read.offset:
        inner += sql.SQL(" OFFSET {}").format(sql.Literal(read.offset))
    statement = sql.SQL("SELECT coalesce(json_agg(t), '[]'::json)::text FROM ({}) AS t").format(
        inner
    )
    return statement, params


def content_range(offset: int, count: int) -> str:
    """PostgREST's ``Content-Range`` without a total: ``0-24/*``, ``*/*`` when empty."""
    return f"{offset}-{offset + count - 1}/*" if count else "*/*"
