"""The SQL files of the schema, read and checked: what ``orchestrator migrate`` applies.

Two kinds, as Flyway's versioned and repeatable migrations:

``sql/migrations/NNNN_what.sql``
    Forward-only: tables, indexes, types, data changes. Applied once each, in number
    order; an applied file must never change (a change goes in a new file).
``sql/functions/<area>/<what>.sql``
    Functions, views and triggers: the one current definition of each, edited in place.
    Applied in the order of ``sql/functions/order.txt`` whenever one of them changed.

Both are idempotent, so the whole schema is also one script for the SQL editor
(``orchestrator migrate --print-sql``). Every function and view is defined in exactly one
file: :func:`discover` refuses a tree where a name has two homes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

from orchestrator.errors import MigrationError

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_DEFINITION = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|VIEW)\s+(\"?[A-Za-z_][\w$]*\"?(?:\.[A-Za-z_][\w$]*)?)",
    re.IGNORECASE | re.MULTILINE,
)
ORDER_FILE = "order.txt"


@dataclass(frozen=True)
class SqlFile:
    """One file of the schema: its path under ``sql/`` and its text."""

    name: str
    text: str

    @cached_property
    def checksum(self) -> str:
        """SHA-256 of the text with CRLF read as LF, so a Windows checkout still matches."""
        return hashlib.sha256(self.text.replace("\r\n", "\n").encode()).hexdigest()

    @cached_property
    def defines(self) -> tuple[str, ...]:
        """``function public.func_x`` / ``view public.v_x`` for each definition, sorted."""
        found: set[str] = set()
        for kind, name in _DEFINITION.findall(self.text):
            if "." not in name:
                raise MigrationError(
                    f"sql/{self.name}: {kind.upper()} {name} must name its schema "
                    "(public.<name> for the API, hub_internal.<name> for internals)"
                )
            found.add(f"{kind.lower()} {name.lower()}")
        return tuple(sorted(found))


@dataclass(frozen=True)
class SchemaFiles:
    """Every file of the schema, in the order they apply."""

    migrations: list[SqlFile]
    functions: list[SqlFile]
    superseded: dict[str, str]

    @property
    def function_names(self) -> list[str]:
        """Every function and view the function files define (``kind schema.name``)."""
        return sorted({name for f in self.functions for name in f.defines})


def sql_dir() -> Path:
    """``sql/`` of a source checkout, or the copy packed into an installed wheel."""
    packed = resources.files("orchestrator") / "_sql"
    if packed.is_dir():
        return Path(str(packed))
    return Path(__file__).resolve().parents[2] / "sql"


def bookkeeping_sql(directory: Path | None = None) -> str:
    """The runner's own tables (``sql/bookkeeping.sql``), created before anything else."""
    return ((directory or sql_dir()) / "bookkeeping.sql").read_text(encoding="utf-8")


def discover(directory: Path | None = None) -> SchemaFiles:
    """Reads ``sql/``: numbered files in number order, function files in their order."""
    directory = directory or sql_dir()
    migrations_dir, functions_dir = directory / "migrations", directory / "functions"
    if not migrations_dir.is_dir() or not functions_dir.is_dir():
        raise MigrationError(
            f"schema files not found: {directory} needs migrations/ and functions/"
        )
    files = SchemaFiles(
        _numbered(migrations_dir), _ordered(functions_dir), _superseded(migrations_dir)
    )
    _one_home_each(files)
    return files


def _numbered(directory: Path) -> list[SqlFile]:
    files: list[SqlFile] = []
    numbers: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"migrations/{path.name}: migration files are named NNNN_what.sql "
                "(four digits, lower case)"
            )
        if match.group(1) in numbers:
            raise MigrationError(
                f"migrations/{path.name} and {numbers[match.group(1)]} share a number"
            )
        numbers[match.group(1)] = path.name
        files.append(SqlFile(f"migrations/{path.name}", path.read_text(encoding="utf-8")))
    return files


def _ordered(directory: Path) -> list[SqlFile]:
    order_path = directory / ORDER_FILE
    if not order_path.is_file():
        raise MigrationError(f"functions/{ORDER_FILE} is missing: it lists the function files")
    listed: list[str] = []
    for raw in order_path.read_text(encoding="utf-8").splitlines():
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry in listed:
            raise MigrationError(f"functions/{ORDER_FILE} lists {entry} twice")
        if not (directory / entry).is_file():
            raise MigrationError(f"functions/{ORDER_FILE} lists {entry}, which does not exist")
        listed.append(entry)
    on_disk = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.sql"))
    unlisted = [name for name in on_disk if name not in listed]
    if unlisted:
        raise MigrationError(
            f"functions/{unlisted[0]} is not listed in functions/{ORDER_FILE}: add it after "
            "the files whose functions it calls"
        )
    return [
        SqlFile(f"functions/{name}", (directory / name).read_text(encoding="utf-8"))
        for name in listed
    ]


def _superseded(directory: Path) -> dict[str, str]:
    path = directory / "superseded.txt"
    if not path.is_file():
        return {}
    pairs = (line.split() for line in path.read_text(encoding="utf-8").splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2 and not p[0].startswith("#")}


def _one_home_each(files: SchemaFiles) -> None:
    homes: dict[str, str] = {}
    for file in [*files.migrations, *files.functions]:
        for name in file.defines:
            if name in homes:
                raise MigrationError(
                    f"{name} is defined in both sql/{homes[name]} and sql/{file.name}: "
                    "each function and view has one home; edit it there"
                )
            homes[name] = file.name
