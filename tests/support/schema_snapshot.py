"""A comparable picture of a database's hub schema, read from the catalogs.

Two databases that should hold the same schema (one migrated from scratch, one upgraded
from an older layout, one made by the printed script) are compared through it: tables,
columns and defaults, constraints, indexes, functions (full definition, owner rights,
grants, comment), views, triggers, RLS and policies, grants on every object, comments,
extensions and schemas. Daily log partitions are left out (their names carry the day
they were made); their parent and its indexes are in.
"""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMAS = ("public", "hub_internal", "extensions")

_QUERIES: dict[str, str] = {
    "schemas": """
        SELECT nspname, coalesce(nspacl::text, ''), coalesce(obj_description(oid, 'pg_namespace'), '')
          FROM pg_namespace WHERE nspname = ANY (%(schemas)s)""",
    "relations": """
        SELECT n.nspname, c.relname, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
               coalesce(c.reloptions::text, ''), coalesce(c.relacl::text, ''),
               coalesce(obj_description(c.oid, 'pg_class'), '')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
           AND NOT c.relname ~ '^system_logs_p\\d{8}$'""",
    "columns": """
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text,
               coalesce(col_description(c.oid, a.attnum), '')
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = ANY (%(schemas)s) AND a.attnum > 0 AND NOT a.attisdropped
           AND c.relkind IN ('r', 'p', 'v') AND NOT c.relname ~ '^system_logs_p\\d{8}$'""",
    "constraints": """
        SELECT n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid)
          FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%(schemas)s) AND NOT c.relname ~ '^system_logs_p\\d{8}$'""",
    "indexes": """
        SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
         WHERE schemaname = ANY (%(schemas)s) AND NOT tablename ~ '^system_logs_p\\d{8}$'""",
    "functions": """
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_functiondef(p.oid), coalesce(p.proacl::text, ''),
               coalesce(obj_description(p.oid, 'pg_proc'), '')
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          LEFT JOIN pg_depend dep ON dep.objid = p.oid AND dep.deptype = 'e'
         WHERE n.nspname = ANY (%(schemas)s) AND dep.objid IS NULL""",
    "views": """
        SELECT schemaname, viewname, definition FROM pg_views WHERE schemaname = ANY (%(schemas)s)""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY (%(schemas)s) AND NOT t.tgisinternal
           AND NOT c.relname ~ '^system_logs_p\\d{8}$'""",
    "policies": """
        SELECT schemaname, tablename, policyname, permissive, roles::text, cmd,
               coalesce(qual, ''), coalesce(with_check, '')
          FROM pg_policies WHERE schemaname = ANY (%(schemas)s)""",
    "extensions": """
        SELECT e.extname, n.nspname FROM pg_extension e
          JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'""",
}


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, set[tuple[Any, ...]]]:
    """Every schema fact above, as sets of rows per kind."""
    return {
        kind: {tuple(row) for row in conn.execute(query, {"schemas": list(SCHEMAS)})}
        for kind, query in _QUERIES.items()
    }


def differences(
    left: dict[str, set[tuple[Any, ...]]], right: dict[str, set[tuple[Any, ...]]]
) -> list[str]:
    """Human-readable lines, one per fact present on one side only (empty: the same)."""
    lines: list[str] = []
    for kind in _QUERIES:
        for row in sorted(left[kind] - right[kind], key=repr):
            lines.append(f"{kind}: only in the first: {_short(row)}")
        for row in sorted(right[kind] - left[kind], key=repr):
            lines.append(f"{kind}: only in the second: {_short(row)}")
    return lines


def _short(row: tuple[Any, ...]) -> str:
    text = repr(row)
    return text if len(text) < 400 else text[:400] + "..."
