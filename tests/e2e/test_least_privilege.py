"""Every command as the least-privileged login the README recommends: a role that may
log in and is a member of service_role, on a database migrated by its owner.

Such a login may not run DDL, so nothing a command does on start (the schema check
included) may need it: each command below runs to its normal end with no traceback.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from orchestrator.db import migrate
from tests.conftest import PgServer
from tests.e2e.test_cli import orchestrator
from tests.integration.test_privileges import supabase_server

__all__ = ["supabase_server"]  # the module fixture with Supabase's roles


@pytest.fixture(scope="module")
def app_login_url(supabase_server: PgServer) -> Iterator[str]:
    """A migrated database and the URL of a login that is only a member of service_role."""
    name = supabase_server.create_database()
    owner_url = supabase_server.url(name)
    login = f"hub_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(owner_url, autocommit=True) as conn:
        migrate.migrate(conn)
        conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD 'app-secret' IN ROLE service_role")
    parts = urlsplit(owner_url)
    host = parts.netloc.rpartition("@")[2]
    yield urlunsplit(parts._replace(netloc=f"{login}:app-secret@{host}"))
    supabase_server.drop_database(name)
    with supabase_server.admin() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {login}")


@pytest.mark.parametrize(
    "command",
    [
        ("migrate", "--status"),
        ("logs", "--limit", "5"),
        ("logs", "--stats"),
        ("jobs", "list"),
        ("run", "--once"),
        ("worker", "--once", "--worker-id", "least-privileged-worker"),
    ],
    ids=lambda c: " ".join(c),
)
def test_each_command_runs_as_a_service_role_member(app_login_url, tmp_path, command):
    """Exit 0, no traceback, no permission error: the start-up schema check only reads."""
    done = orchestrator(*command, cwd=tmp_path, timeout=60, DATABASE_URL=app_login_url)
    assert "Traceback" not in done.stderr
    assert "permission denied" not in done.stderr + done.stdout
    assert done.returncode == 0, done.stderr


def test_migrate_as_that_login_is_a_no_op_or_one_line(app_login_url, supabase_server, tmp_path):
    """Up to date: `migrate` as that login says so and touches nothing. Behind: one line
    saying the owner must migrate (no DDL attempted before it knows it has work)."""
    done = orchestrator("migrate", cwd=tmp_path, timeout=60, DATABASE_URL=app_login_url)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
    owner_url = supabase_server.url(urlsplit(app_login_url).path.lstrip("/"))
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("DELETE FROM schema_functions WHERE filename = 'functions/logs/views.sql'")
        try:
            behind = orchestrator("migrate", cwd=tmp_path, timeout=60, DATABASE_URL=app_login_url)
            assert behind.returncode == 1
            assert behind.stderr.count("\n") == 1 and "Traceback" not in behind.stderr
            assert "may not change the schema" in behind.stderr
            assert "as the role that owns the hub's tables" in behind.stderr
        finally:
            migrate.migrate(owner)


def test_a_job_runs_end_to_end_as_that_login(app_login_url, tmp_path):
    """Submit, work and read back a job with nothing but service_role's rights."""
    with psycopg.connect(app_login_url, autocommit=True) as conn:
        conn.execute("SELECT func_upsert_hub_user('least', 'org-least')")
    submitted = orchestrator(
        "jobs", "submit", "--user", "least", "--type", "probe", "--command", "echo least",
        cwd=tmp_path, timeout=60, DATABASE_URL=app_login_url,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    worked = orchestrator(
        "worker", "--once", "--worker-id", "least-worker",
        cwd=tmp_path, timeout=60, DATABASE_URL=app_login_url,
    )  # fmt: skip
    assert worked.returncode == 0, worked.stderr
    listed = orchestrator("jobs", "list", cwd=tmp_path, timeout=60, DATABASE_URL=app_login_url)
    assert "completed" in listed.stdout
