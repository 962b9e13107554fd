"""Privileges of the workers table and the heartbeat, on a cluster with Supabase's roles.

The fixtures are test_privileges.py's: a cluster with anon/authenticated/service_role and
a database migrated after Supabase's default grants (ALL to every API role) were set.
"""

# ruff: noqa: F811

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Json

# Imported fixtures, which the tests take as parameters of the same name.
from tests.integration.test_privileges import admin, secured_db, supabase_server  # noqa: F401

HEARTBEAT = "func_worker_heartbeat_with_logs(text,text,uuid,jsonb,json)"
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def test_api_roles_have_no_privilege_on_workers_or_the_heartbeat(admin):
    """anon and authenticated: no table privilege, no EXECUTE; PUBLIC no EXECUTE either."""
    for role in ("anon", "authenticated"):
        for privilege in PRIVILEGES:
            assert not admin.execute(
                "SELECT has_table_privilege(%s, 'public.workers', %s)", [role, privilege]
            ).fetchone()[0], (role, privilege)
        assert not admin.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, HEARTBEAT]
        ).fetchone()[0], role
    public = admin.execute(
        "SELECT count(*) FROM aclexplode((SELECT coalesce(proacl, acldefault('f', proowner)) "
        "FROM pg_proc WHERE oid = %s::regprocedure)) WHERE grantee = 0",
        [HEARTBEAT],
    ).fetchone()[0]
    assert public == 0


def test_workers_has_rls_and_only_a_service_role_policy(admin):
    """RLS is on and its one policy names service_role."""
    assert admin.execute(
        "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.workers'::regclass"
    ).fetchone() == (True,)
    policies = admin.execute(
        "SELECT p.polname, array(SELECT rolname FROM pg_roles WHERE oid = ANY (p.polroles)) "
        "FROM pg_policy p WHERE p.polrelid = 'public.workers'::regclass"
    ).fetchall()
    assert policies == [("hub_service_role_all", ["service_role"])]


def test_heartbeat_is_not_security_definer_and_fixes_its_search_path(admin):
    """It runs with its caller's rights, unlike the seed's definer heartbeat open to anon."""
    definer, config = admin.execute(
        "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = %s::regprocedure", [HEARTBEAT]
    ).fetchone()
    assert definer is False
    assert "search_path=pg_catalog, public, pg_temp" in config


def test_anon_is_refused_and_service_role_beats_with_logs(admin):
    """As the roles: anon gets permission denied; service_role upserts, logs and reads."""
    logs = Json([{"log_level": "INFO", "message": "hello from service_role"}])
    for role in ("anon", "authenticated"):
        admin.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute("SELECT func_worker_heartbeat_with_logs('gpu-x', logs => %s)", [logs])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute("SELECT count(*) FROM workers")
        admin.execute("RESET ROLE")
    admin.execute("SET ROLE service_role")
    try:
        for _ in range(2):
            result = admin.execute(
                "SELECT func_worker_heartbeat_with_logs('gpu-sr', 'busy', logs => %s)", [logs]
            ).fetchone()[0]
        assert result["worker"]["heartbeat_count"] == 2
        assert result["logs"] == {
            "success": True,
            "inserted": 1,
            "duplicates": 0,
            "rejected": [],
            "errors": 0,
        }
        assert admin.execute(
            "SELECT status, heartbeat_count FROM workers WHERE worker_id = 'gpu-sr'"
        ).fetchone() == ("busy", 2)
        assert admin.execute(
            "SELECT count(*) FROM system_logs WHERE worker_id = 'gpu-sr'"
        ).fetchone() == (2,)
    finally:
        admin.execute("RESET ROLE")
