"""Makes Python values safe to send as PostgreSQL ``jsonb``.

``jsonb`` cannot hold U+0000, and UTF-8 cannot encode lone surrogates (which Python
strings may carry, e.g. from ``surrogateescape``-decoded file names). Either would make
the server refuse the *whole* batch before our insert function even runs, so the client
replaces each such character with U+FFFD (the Unicode replacement character) and the
rest of the record is kept. Non-JSON values (datetimes, UUIDs, objects) become strings,
and so do what would make an encoder raise: NaN and infinities, integers of thousands
of digits, containers nested past any sane depth (a cycle), objects whose ``__str__``
raises. The JSON log lines (:mod:`orchestrator.logs.format`) use the same function.
"""

from __future__ import annotations

import json
import math
import reprlib
import sys
from typing import Any

import orjson

REPLACEMENT = "\ufffd"


def safe_text(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (fast when already clean)."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Valid surrogate pairs are joined, lone halves become U+FFFD.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def printable(value: object) -> str:
    """``str(value)``, even for an object whose ``__str__`` raises (or recurses)."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


MAX_DEPTH = 20
MAX_BYTES = 65536  # what the database keeps of metadata (sql/functions/logs/ingest.sql)


class _Budget:
    """Approximate bytes of JSON text still allowed; the walk stops when it is spent."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


def json_safe(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` that encodes as valid ``jsonb``: see the module docstring.

    Containers nested deeper than ``MAX_DEPTH`` become their (short) text; the size is
    the caller's to bound (a whole batch goes through here): see :func:`bounded_json`."""
    return bounded_json(value, sys.maxsize)[0]


def bounded_json(value: Any, max_bytes: int = MAX_BYTES) -> tuple[Any, bool]:
    """(:func:`json_safe` copy of ``value``, whether it was cut at ``max_bytes``).

    Never raises and never runs long, whatever ``value`` is: a dict that contains
    itself, another thread changing it (each container is copied in one step, atomic
    under the GIL, before it is walked), keys that are not strings, objects whose
    ``str`` raises, nesting thousands deep, or millions of members (the walk stops when
    the budget of bytes is spent, and says so)."""
    budget = _Budget(max_bytes)
    try:
        safe = _walk(value, 0, budget)
    except Exception:  # a RecursionError or MemoryError from a pathological object
        return safe_text(printable(value)[:max_bytes]), True
    return safe, budget.left < 0


def _walk(value: Any, depth: int, budget: _Budget) -> Any:
    if isinstance(value, str):
        budget.left -= len(value) + 3
        return safe_text(value)
    if value is None or isinstance(value, bool):
        budget.left -= 5
        return value
    if isinstance(value, int):  # past ~4300 digits int -> str raises; keep well below
        budget.left -= 12
        return value if value.bit_length() < 4096 else printable(value)
    if isinstance(value, float):
        budget.left -= 12
        # JSON has no NaN/Infinity; jsonb rejects them, so they travel as strings.
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_DEPTH or not isinstance(value, dict | list | tuple):
        text = safe_text(_short(value) if depth >= MAX_DEPTH else printable(value))
        text = text[: max(budget.left, 0)]
        budget.left -= len(text) + 3
        return text
    budget.left -= 2
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, member in list(value.items()):
            if budget.left < 0:
                break
            name = key if type(key) is str else printable(key)
            budget.left -= len(name) + 4
            out[safe_text(name)] = _walk(member, depth + 1, budget)
        return out
    items: list[Any] = []
    for member in list(value):
        if budget.left < 0:
            break
        items.append(_walk(member, depth + 1, budget))
        budget.left -= 1
    return items


_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother = 3, 200, 200


def _short(value: Any) -> str:
    """A bounded description of a value nested too deep (reprlib copes with cycles,
    huge containers and reprs that raise)."""
    try:
        return _repr.repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def dumps_json(value: Any) -> str:
    """JSON text of a :func:`json_safe` value: orjson's speed (several times the standard
    library's on this path), with the standard library as the fallback for anything
    orjson refuses (non-string keys, integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, default=str)
