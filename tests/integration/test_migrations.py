"""The migration runner: fresh, re-run, edited file refused, concurrent runs, psql -f."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from orchestrator.db import migrate
from orchestrator.errors import MigrationError

ALL = [f.name for f in migrate.discover()]


def test_fresh_database_gets_every_file_in_order(empty_db_url):
    """All files apply in number order and are recorded with their checksums."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert migrate.migrate(conn) == ALL
        recorded = conn.execute(
            "SELECT filename, checksum FROM schema_migrations ORDER BY filename"
        ).fetchall()
    assert recorded == [(f.name, f.checksum) for f in migrate.discover()]


def test_rerun_applies_nothing(db_url):
    """A migrated database has nothing pending."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert migrate.migrate(conn) == []
        status = migrate.status(conn)
    assert [a.name for a in status.applied] == ALL
    assert status.pending == [] and status.edited == [] and status.missing == []


def _copy_sql(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(migrate.migrations_dir(), target)
    return target


def test_edited_file_is_refused_with_a_clear_message(empty_db_url, tmp_path):
    """Changing an applied file stops the run and says what to do instead."""
    directory = _copy_sql(tmp_path)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrate.migrate(conn, migrate.discover(directory))
        edited = directory / "0002_system_logs.sql"
        edited.write_text(edited.read_text() + "\n-- a later edit\n")
        (directory / "0099_new.sql").write_text("CREATE TABLE IF NOT EXISTS t99 (x int);")
        with pytest.raises(MigrationError) as error:
            migrate.migrate(conn, migrate.discover(directory))
        assert "sql/0002_system_logs.sql was edited after it was applied" in str(error.value)
        assert "put the change in a new numbered file" in str(error.value)
        assert conn.execute("SELECT to_regclass('t99')").fetchone() == (None,)
        assert [e[1].name for e in migrate.status(conn, migrate.discover(directory)).edited] == [
            "0002_system_logs.sql"
        ]


def test_line_endings_do_not_count_as_an_edit(empty_db_url, tmp_path):
    """A checkout with CRLF line endings has the same checksums."""
    directory = _copy_sql(tmp_path)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrate.migrate(conn, migrate.discover(directory))
        for path in directory.glob("*.sql"):
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
        assert migrate.migrate(conn, migrate.discover(directory)) == []


def test_failing_file_leaves_nothing_half_done(empty_db_url, tmp_path):
    """A file that fails is rolled back whole and not recorded."""
    directory = _copy_sql(tmp_path)
    (directory / "0099_broken.sql").write_text(
        "CREATE TABLE half_done (x int);\nSELECT no_such_function();\n"
    )
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(
            MigrationError,
            match=r"sql/0099_broken.sql failed: function no_such_function\(\) does not exist",
        ):
            migrate.migrate(conn, migrate.discover(directory))
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert [f.name for f in migrate.status(conn, migrate.discover(directory)).pending] == [
            "0099_broken.sql"
        ]


def test_badly_named_file_is_refused(tmp_path):
    """Files must be NNNN_what.sql so their order is unambiguous."""
    (tmp_path / "12_oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"named NNNN_what\.sql"):
        migrate.discover(tmp_path)


def test_two_concurrent_runs_apply_each_file_once(empty_db_url):
    """The advisory lock serialises runs: together they apply every file exactly once."""
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            with psycopg.connect(empty_db_url, autocommit=True) as conn:
                barrier.wait()
                results.append(migrate.migrate(conn))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(results[0] + results[1]) == ALL
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(ALL),)


def _psql() -> str:
    from orchestrator.db.embedded import _pgserver

    bundled = Path(_pgserver()._commands.POSTGRES_BIN_PATH) / "psql"
    return str(bundled) if bundled.exists() else (shutil.which("psql") or "psql")


def test_each_file_runs_twice_with_psql_on_error_stop(empty_db_url):
    """Every file runs unchanged with psql -v ON_ERROR_STOP=1 -f, and again (idempotent)."""
    for _ in range(2):
        for file in sorted(migrate.migrations_dir().glob("*.sql")):
            done = subprocess.run(
                [_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", empty_db_url, "-f", str(file)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{file.name}: {done.stderr}"
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT to_regprocedure('func_insert_logs_batch(jsonb)') IS NOT NULL"
        ).fetchone() == (True,)
