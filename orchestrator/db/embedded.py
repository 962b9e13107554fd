"""The embedded default: a PostgreSQL server run from the ``pgserver`` package.

With no ``DATABASE_URL`` and no Supabase settings the hub starts its own server in a
data directory under the user's data dir, reuses it on the next run, and stops it when
the last process using it exits (pgserver counts the processes holding a handle, so the
demo's daemon and workers share one server). It listens only on a Unix socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from orchestrator.errors import DatabaseUnavailable

DATABASE_NAME = "orchestrator_hub"


def _pgserver() -> Any:
    # pgserver asks platformdirs for a runtime dir at import time; on servers without
    # XDG_RUNTIME_DIR that warns once per process about a fallback that works fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    # Its INFO lines (each initdb/pg_ctl command line and output at start and stop) are
    # not the program's: WARNING and above only, unless the program set a level itself.
    quiet = logging.getLogger("pgserver")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.WARNING)
    return pgserver


@dataclass
class EmbeddedServer:
    """A running embedded server and the URL of the hub's database in it."""

    data_dir: Path
    url: str
    _handle: Any

    def stop(self) -> None:
        """Releases this process's handle; the last process out stops the server."""
        self._handle.cleanup()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_handles(data_dir: Path) -> None:
    """Drops pids of processes that died without releasing their handle (SIGKILL, OOM).

    pgserver stops the server only when the last pid in its handle list leaves; a pid
    left behind by a killed process would keep every later server running forever.
    """
    pids_file = data_dir / ".handle_pids.json"
    if not pids_file.exists():
        return
    server_class = _pgserver().postgres_server.PostgresServer
    with server_class._lock:
        try:
            pids = [int(p) for p in json.loads(pids_file.read_text() or "[]")]
        except (ValueError, TypeError):
            pids = []
        alive = [pid for pid in pids if _pid_alive(pid)]
        if alive != pids:
            pids_file.write_text(json.dumps(alive))


def start_embedded(data_dir: Path) -> EmbeddedServer:
    """Starts (or joins) the embedded server in ``data_dir`` and ensures the hub database."""
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(data_dir.resolve())
        handle = _pgserver().get_server(data_dir, cleanup_mode="stop")
    except Exception as error:  # pgserver raises bare subprocess/OS errors
        log = data_dir / "log"
        raise DatabaseUnavailable(
            f"cannot start the embedded PostgreSQL in {data_dir}: {error}"
            + (f" (server log: {log})" if log.exists() else "")
        ) from None
    admin_url: str = handle.get_uri()
    _ensure_database(admin_url)
    return EmbeddedServer(data_dir, handle.get_uri(DATABASE_NAME), handle)


def _ensure_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
        if exists.fetchone() is None:
            # Another process may create it between our check and our CREATE.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
