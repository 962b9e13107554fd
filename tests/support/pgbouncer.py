"""A real PgBouncer in TRANSACTION pooling mode in front of a test PostgreSQL server.

Supabase's pooler (Supavisor) and most managed PgBouncers hand each *transaction* to
whichever server connection is free: no server-side prepared statements, no session
state, no session advisory locks, no LISTEN. ``PgBouncer(backend_url)`` starts Debian's
``pgbouncer`` binary on 127.0.0.1 (a free port) with a small pool, so that several
clients really share server connections, and stops it on exit::

    with PgBouncer(db_url) as bouncer:
        psycopg.connect(bouncer.url("mydb"))

The backend may be TCP (``postgresql://postgres@127.0.0.1:5432/postgres``) or the
embedded server's Unix socket (``postgresql://postgres:@/db?host=/socket/dir``).
PgBouncer refuses to run as root; as root it is started with ``-u <user>``: the owner
of the backend's socket directory (pgserver's ``pgserver`` user), else ``postgres`` or
``nobody``. A missing binary is an error that says how to install it, not a skip: a
skipped test would hide that the machine (or CI) lacks it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

INSTALL_HINT = (
    "PgBouncer is required by the transaction-pooling tests and was not found "
    "(neither `pgbouncer` on PATH nor /usr/sbin/pgbouncer). Install it with "
    "`apt-get install -y pgbouncer` (Debian/Ubuntu; `.ci/run` does this when it is missing)."
)


def find_pgbouncer() -> str:
    """Path of the pgbouncer binary, or raises RuntimeError with how to install it."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    for candidate in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/bin/pgbouncer"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(INSTALL_HINT)


def pgbouncer_version(binary: str) -> tuple[int, ...]:
    """``(1, 18, 0)`` from ``pgbouncer --version``."""
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)(?:\.(\d+))?", out)
    if not match:
        raise RuntimeError(f"cannot read the version of {binary}: {out!r}")
    return tuple(int(part or 0) for part in match.groups())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quote(value: str) -> str:
    """A libpq-style connstring value for pgbouncer's [databases] section."""
    if value and re.fullmatch(r"[A-Za-z0-9_./:-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class PgBouncer:
    """Context manager: a transaction-mode PgBouncer in front of ``backend_url``'s server.

    ``pool_size`` is ``default_pool_size``: the number of server connections shared by
    all clients of one database (2 by default; 1 makes the sharing deterministic).
    """

    def __init__(self, backend_url: str, *, pool_size: int = 2, start_timeout: float = 10) -> None:
        self.backend_url = backend_url
        self.pool_size = pool_size
        self.start_timeout = start_timeout
        params = conninfo_to_dict(backend_url)
        self.backend_dbname = str(params.get("dbname") or "postgres")
        self.port = 0
        self.version: tuple[int, ...] = ()
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- public -------------------------------------------------------------------------

    def url(self, dbname: str | None = None) -> str:
        """URL of ``dbname`` (default: the backend URL's database) through the bouncer."""
        assert self.port, "PgBouncer is not running"
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname or self.backend_dbname}"

    @property
    def log_path(self) -> Path:
        assert self._dir is not None
        return self._dir / "pgbouncer.log"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of pgbouncer's log (for failure messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (AssertionError, OSError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def __enter__(self) -> PgBouncer:
        binary = find_pgbouncer()
        self.version = pgbouncer_version(binary)
        host, port, user, password = self._backend()
        self._dir = Path(tempfile.mkdtemp(prefix="hub-test-pgbouncer-"))
        try:
            run_as = self._run_as_user(host)
            for attempt in range(3):  # the free port may be taken between probe and bind
                self.port = _free_port()
                config = self._write_config(host, port, user, password)
                if run_as is not None:
                    for path in (self._dir, config):
                        os.chown(path, run_as.pw_uid, run_as.pw_gid)
                command = [binary, *(["-u", run_as.pw_name] if run_as else []), str(config)]
                with self.log_path.open("ab") as log:
                    self._process = subprocess.Popen(
                        command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
                    )
                if self._wait_ready():
                    return self
                self._kill()
                if attempt < 2 and "Address already in use" in self.log_tail():
                    continue
                raise RuntimeError(
                    f"pgbouncer did not accept connections on 127.0.0.1:{self.port} within "
                    f"{self.start_timeout:g} s (command: {' '.join(command)}); its log:\n"
                    + self.log_tail()
                )
        except BaseException:
            self._cleanup()
            raise
        raise AssertionError("unreachable")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()

    # -- internals ----------------------------------------------------------------------

    def _backend(self) -> tuple[str, int, str, str | None]:
        """Host (or socket directory), port, user and password of the backend server."""
        params: dict[str, Any] = conninfo_to_dict(self.backend_url)
        with psycopg.connect(self.backend_url, connect_timeout=5) as conn:
            info = conn.info
            host = info.host  # the socket directory when connected over a Unix socket
            port = info.port
            user = info.user
        return host, port, user, params.get("password") or None

    def _run_as_user(self, host: str) -> pwd.struct_passwd | None:
        """As root: a user who may reach the backend (pgbouncer will not run as root)."""
        if os.geteuid() != 0:
            return None
        candidates: list[str | int] = []
        if host.startswith("/"):
            owner = os.stat(host).st_uid  # pgserver's socket dir: 0700, owned by its user
            if owner != 0:
                candidates.append(owner)
        candidates += ["postgres", "nobody"]
        for candidate in candidates:
            try:
                return (
                    pwd.getpwuid(candidate)
                    if isinstance(candidate, int)
                    else pwd.getpwnam(candidate)
                )
            except KeyError:
                continue
        raise RuntimeError("running as root and found no user (postgres, nobody) to run pgbouncer")

    def _write_config(self, host: str, port: int, user: str, password: str | None) -> Path:
        assert self._dir is not None
        backend = f"host={_quote(host)} port={port} user={_quote(user)}"
        if password:
            backend += f" password={_quote(password)}"
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",  # TCP only: no /tmp/.s.PGSQL.<port> left behind
            "auth_type": "any",  # clients are not authenticated; the server sees `user`
            "pool_mode": "transaction",
            "default_pool_size": str(self.pool_size),
            "min_pool_size": "0",
            "reserve_pool_size": "0",
            "max_client_conn": "200",
            "server_reset_query": "",  # transaction mode: nothing is reset between clients
            "query_wait_timeout": "30",  # a client starved of a server connection fails
            "ignore_startup_parameters": "extra_float_digits,options",
            "log_connections": "1",
            "log_disconnections": "1",
            "log_pooler_errors": "1",
        }
        if self.version >= (1, 21):
            # 0: no prepared-statement support at all, like a pooler that predates it;
            # a client that prepared server-side statements would fail here.
            settings["max_prepared_statements"] = "0"
        lines = ["[databases]", f"* = {backend}", "", "[pgbouncer]"]
        lines += [f"{key} = {value}" for key, value in settings.items()]
        config = self._dir / "pgbouncer.ini"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _wait_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def _cleanup(self) -> None:
        self._kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self.port = 0
