"""The one SQL text of a :class:`~orchestrator.db.calls.Call`, for every SQL driver.

``SELECT public."func"("name" => <value>, ...)``: named arguments keep a call valid when
a function gains a defaulted parameter. The drivers differ only in how a value is
written (psycopg: ``%(name)s``; asyncpg: ``$1``), so the shape is built here once and
each driver names its placeholder style (pgqueuer's lesson: one statement, two drivers).
"""

from __future__ import annotations

from typing import Any, Literal

from orchestrator.db.calls import Call

PlaceholderStyle = Literal["pyformat", "numeric"]


def _quoted(identifier: str) -> str:
    # Call checked every name against ^[a-z_][a-z0-9_]*$, so quoting cannot be escaped;
    # the quotes only keep a reserved word such as "limit" usable as an argument name.
    return f'"{identifier}"'


def call_sql(call: Call[Any], style: PlaceholderStyle) -> str:
    """The statement text; ``numeric`` numbers the values in ``call.args`` order."""
    if style == "pyformat":
        values = [f"%({name})s" for name in call.args]
    else:
        values = [f"${position}" for position in range(1, len(call.args) + 1)]
    params = ", ".join(
        f"{_quoted(name)} => {value}" for name, value in zip(call.args, values, strict=True)
    )
    return f"SELECT public.{_quoted(call.function)}({params})"
