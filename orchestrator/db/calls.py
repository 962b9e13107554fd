"""Operations of the hub as plain values: a SQL function name, named arguments, a decoder.

This is the driver seam. Every operation is written once, in its area's ``calls.py``
(``orchestrator.logs.calls``, ``orchestrator.jobs.calls``, ``orchestrator.query.calls``,
...); psycopg (sync), asyncpg (the daemon) and supabase-py (REST ``rpc``) only
*execute* a :class:`Call`, so no rule is written twice. Every hub function returns one
``jsonb`` value, which the driver hands to ``decode`` as plain Python (dicts, lists,
str, int).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One call of a hub SQL function.

    ``args`` values are JSON-compatible (str, int, float, bool, None, list, dict); lists
    and dicts travel as ``jsonb``. Names are checked so a driver can splice them into SQL.
    """

    function: str
    args: Mapping[str, Any]
    decode: Callable[[Any], T]

    def __post_init__(self) -> None:
        for name in (self.function, *self.args):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")


class CallExecutor(Protocol):
    """Anything that runs a :class:`Call`: psycopg, supabase-py ``rpc``, any driver tomorrow."""

    def run(self, call: Call[T]) -> T: ...


class AsyncCallExecutor(Protocol):
    """The same for async code (the daemon): asyncpg's executor, or a test's stand-in."""

    async def run(self, call: Call[T]) -> T: ...
