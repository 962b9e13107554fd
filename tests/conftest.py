"""Real PostgreSQL for every database test: no mock of our own database, ever.

The server is the embedded one (pgserver, started in a temporary directory for the
session) unless ``TEST_DATABASE_URL`` names another, e.g. the PostgreSQL 15 of CI at
``postgresql://postgres@127.0.0.1:5432/postgres``. The role must be able to create
databases. Isolation: the migrations run once into a template database, and each test
that asks for ``db_url`` gets its own clone of it (``CREATE DATABASE ... TEMPLATE``).
A clone takes 0.1-0.5 s on a 2-core machine, as long as many tests themselves, so the
next one is made on a background thread while the current test runs, and a finished
test's database is dropped there too.

The embedded session server runs without fsync and full-page writes (it lives in a
temporary directory, in RAM where ``/dev/shm`` exists, and is gone after the run: no
test is about surviving an operating system crash, and a killed server process loses
nothing the page cache holds). Clones are
WAL-logged copies (``STRATEGY wal_log``): a ``file_copy`` clone checkpoints the whole
cluster, which under xdist, or on a shared server, means flushing every other session's
writes first. A server named by ``TEST_DATABASE_URL`` is left exactly as configured.

Under pytest-xdist (``make test``) each worker is a session of its own: its own embedded
server, template and clones; on a shared server the uuid names keep them apart.
"""

from __future__ import annotations

import compileall
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

import orchestrator
from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from orchestrator.logs import context
from tests.support.roles import create_supabase_roles


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compiles the package once per run (in the controller, before any worker).

    The tests start ``python -m orchestrator`` hundreds of times; where the environment
    sets PYTHONDONTWRITEBYTECODE (this machine does) nothing else writes ``__pycache__``,
    and every one of those processes compiled the whole package again (~0.4 s each).
    Python still reads the cache it finds, and a stale file is recompiled by mtime.
    """
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(Path(orchestrator.__file__).parent, quiet=1)


def with_dbname(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


class PgServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    def __init__(self, admin_url: str, embedded: Any = None) -> None:
        self.admin_url = admin_url
        self.embedded = embedded

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_url, autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        name = f"hubtest_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                # wal_log, not file_copy: file_copy forces two checkpoints of the whole
                # cluster per clone, which flush whatever every other session dirtied.
                statement += sql.SQL(" TEMPLATE {} STRATEGY wal_log").format(
                    sql.Identifier(template)
                )
            conn.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def url(self, dbname: str) -> str:
        return with_dbname(self.admin_url, dbname)


# What the throwaway embedded test server does without (all reloadable settings): the
# durability of its data, and more than 256 MB of WAL kept between checkpoints (each
# wal_log clone writes the whole template to the WAL; the data directory may be in RAM).
TEST_SERVER_SETTINGS = {"fsync": "off", "full_page_writes": "off", "max_wal_size": "256MB"}


def scratch_dir() -> str | None:
    """Where the throwaway embedded server keeps its data: in RAM (``/dev/shm``) where the
    machine has it, else the usual temporary directory.

    Every clone creates some 1,000 files and every drop deletes them; on ext4 creating a
    file after many recent deletes scans for an inode that was not just freed
    (``recently_deleted``), which took over a third of both cores in a profile of the
    suite under xdist. tmpfs has no such cost.
    """
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


@contextlib.contextmanager
def private_pgdata() -> Iterator[Path]:
    """A data directory for an embedded server a test starts, outside pytest's temporary
    root (removed afterwards).

    As root, pgserver runs PostgreSQL as the user ``pgserver`` and opens every parent of
    the data directory to it. pytest makes ``/tmp/pytest-of-<user>`` private (0700) again
    whenever a pytest process starts on the machine (another run, one test run by hand),
    and from then on the server, or pg_ctl waiting for it, is denied its own data
    directory: a start that fails ("could not stat data directory"), or pg_ctl timing out
    while the server is up. A directory of its own is opened once and stays open.
    """
    with tempfile.TemporaryDirectory(
        prefix="hub-test-embedded-", dir=scratch_dir(), ignore_cleanup_errors=True
    ) as tmp:
        yield Path(tmp) / "pgdata"


@pytest.fixture
def pgdata() -> Iterator[Path]:
    """Where this test's own embedded server keeps its data (see ``private_pgdata``)."""
    with private_pgdata() as path:
        yield path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (embedded unless TEST_DATABASE_URL is set)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        server = PgServer(url)
        with server.admin() as conn:  # before the template: see tests/support/roles.py
            create_supabase_roles(conn)
        yield server
        return
    with tempfile.TemporaryDirectory(prefix="hub-test-pg-", dir=scratch_dir()) as tmp:
        server = start_embedded(Path(tmp) / "pgdata")
        try:
            pg = PgServer(with_dbname(server.url, "postgres"), server)
            with pg.admin() as conn:
                for setting, value in TEST_SERVER_SETTINGS.items():
                    conn.execute(
                        sql.SQL("ALTER SYSTEM SET {} = {}").format(
                            sql.Identifier(setting), sql.Literal(value)
                        )
                    )
                conn.execute("SELECT pg_reload_conf()")
            yield pg
        finally:
            server.stop()


@pytest.fixture(scope="session")
def template_db(pg_server: PgServer) -> Iterator[str]:
    """A database with every migration applied, cloned by each test."""
    name = pg_server.create_database()
    with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
        migrate.migrate(conn)
    yield name
    pg_server.drop_database(name)


class CloneSupply:
    """Clones of the template made one ahead, and dropped after use, on one thread.

    One thread runs every CREATE and DROP in the order asked, so at most one clone waits
    unused; a failure to create surfaces in the test that takes the clone.
    """

    def __init__(self, server: PgServer, template: str) -> None:
        self.server, self.template = server, template
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clone-supply")
        self._next: Future[str] = self._make()

    def _make(self) -> Future[str]:
        return self._thread.submit(self.server.create_database, self.template)

    def take(self) -> str:
        """A fresh clone (waits if the one being made is not ready yet)."""
        ready, self._next = self._next, self._make()
        return ready.result()

    def give_back(self, name: str) -> None:
        """Drops ``name`` in the background."""
        self._thread.submit(self.server.drop_database, name)

    def close(self) -> None:
        """Drops the unused clone and waits for every pending drop."""
        try:
            self.give_back(self._next.result())
        finally:
            self._thread.shutdown(wait=True)


@pytest.fixture(scope="session")
def clone_supply(pg_server: PgServer, template_db: str) -> Iterator[CloneSupply]:
    """The session's supply of migrated databases (closed before the template goes)."""
    supply = CloneSupply(pg_server, template_db)
    yield supply
    supply.close()


@pytest.fixture
def db_url(pg_server: PgServer, clone_supply: CloneSupply) -> Iterator[str]:
    """URL of a migrated database of this test's own."""
    name = clone_supply.take()
    yield pg_server.url(name)
    clone_supply.give_back(name)


@pytest.fixture
def empty_db_url(pg_server: PgServer) -> Iterator[str]:
    """URL of an empty database of this test's own (for migration tests)."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to this test's migrated database."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(autouse=True)
def fresh_log_context() -> Iterator[None]:
    """Each test starts with no correlation id, task, worker or cycle of an earlier one."""
    yield
    context.clear_correlation_id()
    context.clear_task_context()
    context.clear_worker_id()
    context.set_cycle_number(None)
