"""Which pg_dump a backup uses, the password kept off command lines, the tables backed up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.backup.errors import BackupError
from orchestrator.backup.manifest import EXCLUDED, backup_name, hub_tables
from orchestrator.db.backup.tools import find_tools, tool_env
from orchestrator.db.schema_files import discover


def test_a_pg_dump_older_than_the_server_is_never_chosen():
    tools = find_tools(16)
    assert tools.major >= 16
    assert tools.pg_restore.parent == tools.pg_dump.parent == tools.psql.parent


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="no pg_dump on PATH")
def test_a_configured_older_pg_dump_is_skipped_for_a_newer_one():
    system = Path(shutil.which("pg_dump") or "")
    tools = find_tools(16, system)
    assert tools.major >= 16


def test_none_new_enough_is_one_line_naming_what_was_found():
    with pytest.raises(BackupError) as refused:
        find_tools(99)
    message = str(refused.value)
    assert refused.value.status == 503 and "\n" not in message
    assert message.startswith("no pg_dump of PostgreSQL 99 or newer (the server is 99); found: ")
    assert "ORCHESTRATOR_PG_DUMP" in message


def test_the_password_travels_in_the_environment_only():
    conninfo, env = tool_env("postgresql://hub:s3cr%40t@db.example:5433/hub?sslmode=require")
    assert "s3cr" not in conninfo and env["PGPASSWORD"] == "s3cr@t"
    assert "host=db.example" in conninfo and "sslmode=require" in conninfo
    _, no_password = tool_env("postgresql://hub@db.example/hub")
    assert "PGPASSWORD" not in no_password


def test_the_backed_up_tables_come_from_the_migrations_minus_derived_ones():
    tables = hub_tables(discover())
    assert {"public.system_logs", "public.jobs", "public.job_events", "public.audit_log"} <= set(
        tables
    )
    assert not set(tables) & EXCLUDED
    assert "public.system_logs_default" not in tables  # a partition, dumped through its root


def test_backup_names_sort_by_time():
    from datetime import UTC, datetime

    when = datetime(2026, 12, 6, 3, 15, 0, 123456, tzinfo=UTC)
    assert backup_name(when) == "hub-backup-20261206T031500Z.tar"
    assert backup_name(when, precise=True) == "hub-backup-20261206T031500123456Z.tar"
