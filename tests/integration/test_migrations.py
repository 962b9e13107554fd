"""The schema runner: numbered files once, function files re-applied when changed, one
transaction, edited numbered files refused, stale signatures dropped, concurrent runs,
the printed script, and a status that never writes."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from orchestrator.db import migrate
from orchestrator.db.schema_files import discover, sql_dir
from orchestrator.errors import MigrationError
from tests.support.schema_snapshot import differences, snapshot

FILES = discover()
ALL = [f.name for f in FILES.migrations] + [f.name for f in FILES.functions]


def _copy_sql(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(sql_dir(), target)
    return target


def test_fresh_database_gets_every_file_in_order(empty_db_url):
    """Numbered files in number order, then function files in order.txt's order, each
    recorded with its checksum."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert migrate.migrate(conn) == ALL
        numbered = conn.execute(
            "SELECT filename, checksum FROM schema_migrations ORDER BY filename"
        ).fetchall()
        functions = conn.execute(
            "SELECT filename, checksum FROM schema_functions ORDER BY filename"
        ).fetchall()
    assert numbered == [(f.name, f.checksum) for f in FILES.migrations]
    assert sorted(functions) == sorted((f.name, f.checksum) for f in FILES.functions)


def test_rerun_applies_nothing(db_url):
    """A migrated database has nothing pending, and says so."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert migrate.migrate(conn) == []
        status = migrate.status(conn)
    assert status.up_to_date
    assert [a.name for a in status.applied] == [f.name for f in FILES.migrations]
    assert status.pending == status.edited == status.missing == status.functions_changed == []


def test_edited_numbered_file_is_refused_and_nothing_else_runs(empty_db_url, tmp_path):
    """Changing an applied numbered file stops the run and says what to do instead; a new
    file of the same run is not applied either (one transaction)."""
    directory = _copy_sql(tmp_path)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrate.migrate(conn, discover(directory))
        edited = directory / "migrations" / "0002_system_logs.sql"
        edited.write_text(edited.read_text() + "\n-- a later edit\n")
        (directory / "migrations" / "0099_new.sql").write_text("CREATE TABLE t99 (x int);")
        with pytest.raises(MigrationError) as error:
            migrate.migrate(conn, discover(directory))
        assert "sql/migrations/0002_system_logs.sql was edited after it was applied" in str(
            error.value
        )
        assert "put the change in a new numbered file" in str(error.value)
        assert conn.execute("SELECT to_regclass('t99')").fetchone() == (None,)
        status = migrate.status(conn, discover(directory))
        assert [e[1].name for e in status.edited] == ["migrations/0002_system_logs.sql"]


def test_line_endings_do_not_count_as_an_edit(empty_db_url, tmp_path):
    """A checkout with CRLF line endings has the same checksums."""
    directory = _copy_sql(tmp_path)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrate.migrate(conn, discover(directory))
        for path in directory.rglob("*.sql"):
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
        assert migrate.migrate(conn, discover(directory)) == []


def test_a_failing_file_rolls_back_the_whole_upgrade(empty_db_url, tmp_path):
    """Nothing of a failed run stays: not the earlier files, not the failing one."""
    directory = _copy_sql(tmp_path)
    (directory / "migrations" / "0099_broken.sql").write_text(
        "CREATE TABLE half_done (x int);\nSELECT no_such_function();\n"
    )
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(
            MigrationError,
            match=r"sql/migrations/0099_broken.sql failed: function no_such_function\(\) "
            r"does not exist",
        ):
            migrate.migrate(conn, discover(directory))
        assert conn.execute(
            "SELECT to_regclass('half_done'), to_regclass('system_logs')"
        ).fetchone() == (None, None)
        assert migrate.status(conn, discover(directory)).empty


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: (d / "migrations" / "12_oops.sql").write_text("SELECT 1;"), "NNNN_what.sql"),
        (
            lambda d: (d / "functions" / "logs" / "extra.sql").write_text("SELECT 1;"),
            r"functions/logs/extra.sql is not listed in functions/order.txt",
        ),
        (
            lambda d: (d / "functions" / "order.txt").write_text(
                (d / "functions" / "order.txt").read_text() + "\nlogs/gone.sql\n"
            ),
            r"lists logs/gone.sql, which does not exist",
        ),
        (
            lambda d: (d / "functions" / "logs" / "views.sql").write_text(
                (d / "functions" / "logs" / "views.sql").read_text()
                + "\nCREATE OR REPLACE FUNCTION public.func_queue_depth() RETURNS integer "
                "LANGUAGE sql RETURN 0;\n"
            ),
            r"function public.func_queue_depth is defined in both",
        ),
        (
            lambda d: (d / "functions" / "logs" / "views.sql").write_text(
                "CREATE FUNCTION func_nowhere() RETURNS int LANGUAGE sql RETURN 1;"
            ),
            r"must name its schema",
        ),
    ],
    ids=["badly-named", "unlisted", "listed-missing", "two-homes", "unqualified"],
)
def test_a_malformed_tree_is_refused_in_one_line(tmp_path, change, message):
    """Each layout mistake is named: the file, and what is accepted."""
    directory = _copy_sql(tmp_path)
    change(directory)
    with pytest.raises(MigrationError, match=message):
        discover(directory)


def test_a_changed_function_file_is_applied_again_and_old_signatures_dropped(
    empty_db_url, tmp_path
):
    """Editing a function file in place is the way to change a function: a new signature
    replaces the old one, with its grants and comment; a removed function and a removed
    view are dropped; an unchanged schema stays put."""
    directory = _copy_sql(tmp_path)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrate.migrate(conn, discover(directory))
        reads = directory / "functions" / "jobs" / "reads.sql"
        text = reads.read_text()
        text = text.replace(
            "CREATE OR REPLACE FUNCTION public.func_queue_depth()",
            "CREATE OR REPLACE FUNCTION public.func_queue_depth(p_provider text DEFAULT NULL)",
        ).replace("public.func_queue_depth()", "public.func_queue_depth(text)")
        reads.write_text(text)
        views = directory / "functions" / "logs" / "views.sql"
        views.write_text(views.read_text().replace("v_error_summary", "v_error_summary_2"))
        assert migrate.migrate(conn, discover(directory)) == [
            "functions/logs/views.sql",
            "functions/jobs/reads.sql",
        ]
        procs = conn.execute(
            "SELECT p.oid::regprocedure::text, obj_description(p.oid, 'pg_proc') IS NOT NULL "
            "FROM pg_proc p WHERE p.proname = 'func_queue_depth'"
        ).fetchall()
        assert procs == [("func_queue_depth(text)", True)]
        assert conn.execute(
            "SELECT to_regclass('public.v_error_summary'), "
            "to_regclass('public.v_error_summary_2') IS NOT NULL"
        ).fetchone() == (None, True)
        assert conn.execute("SELECT func_queue_depth()").fetchone() == (0,)
        assert migrate.migrate(conn, discover(directory)) == []


def test_status_only_reads(empty_db_url):
    """--status on an empty database creates nothing (not even the bookkeeping tables)."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        status = migrate.status(conn)
        assert status.empty and not status.up_to_date
        assert status.behind().startswith(f"{len(FILES.migrations)} migration(s)")
        assert conn.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchone() == (0,)


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
    assert sorted(results[0] + results[1]) == sorted(ALL)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (
            len(FILES.migrations),
        )


def psql_binary() -> str:
    """psql of the embedded server's bundle when there is one, else the system's."""
    from orchestrator.db.embedded import _pgserver

    bundled = Path(_pgserver()._commands.POSTGRES_BIN_PATH) / "psql"
    return str(bundled) if bundled.exists() else (shutil.which("psql") or "psql")


def test_the_printed_script_is_the_same_schema_and_runs_twice(empty_db_url, db_url, tmp_path):
    """`migrate --print-sql` run twice with psql ON_ERROR_STOP gives the schema that
    `migrate` gives, and records it: a later migrate has nothing to do."""
    script = tmp_path / "hub.sql"
    script.write_text(migrate.print_sql())
    for _ in range(2):
        done = subprocess.run(
            [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", empty_db_url, "-f", script],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    with (
        psycopg.connect(empty_db_url, autocommit=True) as printed,
        psycopg.connect(db_url, autocommit=True) as migrated,
    ):
        assert differences(snapshot(printed), snapshot(migrated)) == []
        assert migrate.migrate(printed) == []
