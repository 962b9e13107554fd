"""Forward-only SQL migrations: the numbered files under ``sql/``, applied in order.

Each file runs in its own transaction under a transaction-scoped advisory lock, so two
concurrent ``orchestrator migrate`` runs are safe (the second waits, then finds nothing
left to do) and the runner works through transaction-mode poolers. Each applied file's
SHA-256 is recorded; a file edited after it was applied stops the run with a message
that says what to do instead.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from orchestrator.errors import MigrationError

# pg_advisory_xact_lock key: "orchestrator_hub.migrate" hashed once, fixed forever.
LOCK_KEY = 0x6F72_6368_6D69_6772
FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class MigrationFile:
    """One numbered SQL file and the checksum of its text (line endings normalised)."""

    name: str
    text: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the text with CRLF read as LF, so a Windows checkout still matches."""
        return hashlib.sha256(self.text.replace("\r\n", "\n").encode()).hexdigest()


@dataclass(frozen=True)
class Applied:
    """A row of ``schema_migrations``."""

    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    """Applied and pending files, and applied ones that no longer match or exist."""

    applied: list[Applied]
    pending: list[MigrationFile]
    edited: list[tuple[Applied, MigrationFile]]
    missing: list[Applied]


def migrations_dir() -> Path:
    """``sql/`` of a source checkout, or the copy packed into an installed wheel."""
    packed = resources.files("orchestrator") / "_sql"
    if packed.is_dir():
        return Path(str(packed))
    return Path(__file__).resolve().parents[2] / "sql"


def discover(directory: Path | None = None) -> list[MigrationFile]:
    """The migration files in number order; a clash of numbers is an error."""
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations directory not found: {directory}")
    files: list[MigrationFile] = []
    numbers: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{path.name}: migration files are named NNNN_what.sql (four digits, lower case)"
            )
        if match.group(1) in numbers:
            raise MigrationError(f"{path.name} and {numbers[match.group(1)]} share a number")
        numbers[match.group(1)] = path.name
        files.append(MigrationFile(path.name, path.read_text(encoding="utf-8")))
    return files


def _bootstrap(conn: psycopg.Connection[Any]) -> None:
    text = (Path(__file__).parent / "schema_migrations.sql").read_text(encoding="utf-8")
    conn.execute(text)  # trusted file, several statements


def _applied(conn: psycopg.Connection[Any]) -> list[Applied]:
    rows = conn.execute(
        "SELECT filename, checksum, applied_at FROM public.schema_migrations ORDER BY filename"
    ).fetchall()
    return [Applied(name, checksum, at) for name, checksum, at in rows]


def _status(applied: list[Applied], files: list[MigrationFile]) -> MigrationStatus:
    by_name = {f.name: f for f in files}
    done = {a.name for a in applied}
    return MigrationStatus(
        applied=applied,
        pending=[f for f in files if f.name not in done],
        edited=[
            (a, by_name[a.name])
            for a in applied
            if a.name in by_name and by_name[a.name].checksum != a.checksum
        ],
        missing=[a for a in applied if a.name not in by_name],
    )


def _refuse_edited(status: MigrationStatus) -> None:
    if not status.edited:
        return
    applied, file = status.edited[0]
    raise MigrationError(
        f"sql/{file.name} was edited after it was applied on "
        f"{applied.applied_at:%Y-%m-%d %H:%M} UTC (recorded checksum {applied.checksum[:12]}, "
        f"file now {file.checksum[:12]}); migrations are forward-only: restore the file "
        "and put the change in a new numbered file"
    )


def status(
    conn: psycopg.Connection[Any], files: list[MigrationFile] | None = None
) -> MigrationStatus:
    """What is applied and what is pending (creates the bookkeeping table if needed)."""
    files = discover() if files is None else files
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        _bootstrap(conn)
        return _status(_applied(conn), files)


def migrate(conn: psycopg.Connection[Any], files: list[MigrationFile] | None = None) -> list[str]:
    """Applies every pending file in order; returns the names applied by this run."""
    files = discover() if files is None else files
    done: list[str] = []
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            _bootstrap(conn)
            current = _status(_applied(conn), files)
            _refuse_edited(current)
            if not current.pending:
                return done
            file = current.pending[0]
            started = time.perf_counter()
            try:
                conn.execute(file.text)  # trusted file
            except psycopg.Error as error:
                raise MigrationError(f"sql/{file.name} failed: {_first_line(error)}") from None
            conn.execute(
                "INSERT INTO public.schema_migrations (filename, checksum, duration_ms) "
                "VALUES (%s, %s, %s)",
                [file.name, file.checksum, round((time.perf_counter() - started) * 1000)],
            )
        done.append(file.name)


def _first_line(error: psycopg.Error) -> str:
    diag = error.diag
    where = f" ({diag.context.splitlines()[0]})" if diag.context else ""
    return f"{diag.message_primary or str(error).splitlines()[0]}{where}"
