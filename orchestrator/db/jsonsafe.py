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
    """``str(value)``, even for an object whose ``__str__`` raises."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


MAX_DEPTH = 20


def json_safe(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` that encodes as valid ``jsonb``: see the module docstring."""
    if isinstance(value, str):
        return safe_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # past ~4300 digits int -> str raises; keep well below
        return value if value.bit_length() < 4096 else printable(value)
    if isinstance(value, float):
        # JSON has no NaN/Infinity; jsonb rejects them, so they travel as strings.
        return value if math.isfinite(value) else str(value)
    if _depth > MAX_DEPTH:
        return safe_text(printable(value))
    if isinstance(value, dict):
        return {safe_text(printable(k)): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, _depth + 1) for v in value]
    return safe_text(printable(value))


def dumps_json(value: Any) -> str:
    """JSON text of a :func:`json_safe` value: orjson's speed (several times the standard
    library's on this path), with the standard library as the fallback for anything
    orjson refuses (non-string keys, integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, default=str)
