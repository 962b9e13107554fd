"""Binary COPY dumpers for the shapes the log handler already holds.

The handler's entries carry ids as UUID text, times as integer microseconds and
metadata as JSON text. psycopg's stock binary dumpers want ``uuid.UUID``, ``datetime``
and ``Jsonb`` objects, and building those costs more per row than the COPY itself.
These dumpers, registered on one connection for the uuid, timestamptz and jsonb types,
write the wire format straight from what we have, and still accept the stock objects.
"""

from __future__ import annotations

import struct
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.datetime import DatetimeBinaryDumper
from psycopg.types.json import JsonbBinaryDumper

# PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800_000_000
_INT8 = struct.Struct(">q")


class _UuidBinaryDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        if isinstance(obj, str):
            return bytes.fromhex(obj.replace("-", ""))
        return bytes(obj.bytes)


class _TimestamptzBinaryDumper(DatetimeBinaryDumper):
    def dump(self, obj: Any) -> bytes | bytearray | memoryview | None:
        if isinstance(obj, int):  # Unix time in microseconds
            return _INT8.pack(obj - _PG_EPOCH_US)
        return super().dump(obj)


class _JsonbTextBinaryDumper(JsonbBinaryDumper):
    def dump(self, obj: Any) -> bytes | bytearray | memoryview | None:
        if isinstance(obj, str):  # already JSON text
            return b"\x01" + obj.encode()
        return super().dump(obj)


class _UuidText(str):
    """Key type for the registration only: the dumpers are found by type OID in COPY."""


class _Micros(int):
    """Key type for the registration only."""


class _JsonText(str):
    """Key type for the registration only."""


def register_copy_dumpers(conn: psycopg.Connection[Any]) -> None:
    """Makes this connection's binary COPY take UUID text, integer microseconds and JSON
    text for uuid, timestamptz and jsonb columns (the stock objects keep working)."""
    types = conn.adapters.types
    for key, dumper, name in (
        (_UuidText, _UuidBinaryDumper, "uuid"),
        (_Micros, _TimestamptzBinaryDumper, "timestamptz"),
        (_JsonText, _JsonbTextBinaryDumper, "jsonb"),
    ):
        info = types[name]
        subclass = type(dumper.__name__, (dumper,), {"oid": info.oid})
        conn.adapters.register_dumper(key, subclass)


__all__ = ["register_copy_dumpers"]
