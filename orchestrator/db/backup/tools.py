"""Which ``pg_dump``, ``pg_restore`` and ``psql`` to run, and how to run them safely.

A ``pg_dump`` older than the server refuses to dump it, and the system's is often older
than the embedded server (Debian 12 ships 15, pgserver bundles 16). So the candidates
are, in order: ``ORCHESTRATOR_PG_DUMP`` (with ``pg_restore`` and ``psql`` beside it),
pgserver's bundled binaries, then ``PATH``; the first whose major version is at least the
server's wins, and when none is, one line names every candidate and its version.

Passwords never reach a command line (``ps`` shows those to every user): the connection
string handed to the tools has its password removed and it travels as ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from orchestrator.backup.errors import BackupError

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgTools:
    """A matching set of client binaries and their major version."""

    pg_dump: Path
    pg_restore: Path
    psql: Path
    major: int
    version: str


def _bundled_bin() -> Path | None:
    try:
        from orchestrator.db.embedded import _pgserver

        base = Path(_pgserver().__file__).parent / "pginstall" / "bin"
    except Exception:  # pgserver missing or broken: not a candidate
        return None
    return base if (base / "pg_dump").exists() else None


def _candidates(configured: Path | None) -> list[Path]:
    dirs: list[Path] = []
    if configured is not None:
        dirs.append(configured.parent)
    bundled = _bundled_bin()
    if bundled is not None:
        dirs.append(bundled)
    found = shutil.which("pg_dump")
    if found:
        dirs.append(Path(found).resolve().parent)
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


@lru_cache(maxsize=16)
def _version_of(binary: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    major, minor = match.group(1), match.group(2)
    return int(major), f"{major}.{minor}" if minor else major


def find_tools(server_major: int, configured: Path | None = None) -> PgTools:
    """The first candidate set whose major version is >= ``server_major``, or a
    :class:`BackupError` (status 503) naming what was found."""
    seen: list[str] = []
    for directory in _candidates(configured):
        dump = configured if configured and directory == configured.parent else None
        dump = dump or directory / "pg_dump"
        restore, psql = directory / "pg_restore", directory / "psql"
        version = _version_of(dump)
        if version is None:
            seen.append(f"{dump} (not runnable)")
            continue
        major, full = version
        if major < server_major:
            seen.append(f"{dump} ({full})")
            continue
        if not restore.exists() or not psql.exists():
            seen.append(f"{dump} ({full}, no pg_restore/psql beside it)")
            continue
        return PgTools(dump, restore, psql, major, full)
    found = "; ".join(seen) or "none on PATH and no pgserver"
    raise BackupError(
        f"no pg_dump of PostgreSQL {server_major} or newer (the server is {server_major}); "
        f"found: {found}; install the PostgreSQL {server_major} client tools or set "
        "ORCHESTRATOR_PG_DUMP",
        status=503,
    )


def tool_env(url: str) -> tuple[str, dict[str, str]]:
    """The connection string without its password, and an environment carrying it."""
    parts = {k: v for k, v in conninfo_to_dict(url).items() if v is not None}
    password = parts.pop("password", None)
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if password:
        env["PGPASSWORD"] = str(password)
    env.setdefault("PGAPPNAME", "orchestrator-backup")
    return make_conninfo("", **parts), env


def run_tool(args: list[str], env: dict[str, str], what: str) -> None:
    """Runs a client binary; a failure becomes one line with the tool's first error."""
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {first_error(done.stderr)}")


def first_error(stderr: str) -> str:
    """The first line of a tool's output that says what went wrong."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return line[:400]
    return (lines[0] if lines else "no output")[:400]
