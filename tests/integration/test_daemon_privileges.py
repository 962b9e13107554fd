"""Privileges of the daemon's lease table and functions, on a cluster with Supabase's roles.

The fixtures are test_privileges.py's: a database migrated after Supabase's default
grants (ALL to every API role) were put in place.
"""

# ruff: noqa: F811

from __future__ import annotations

import psycopg
import pytest

from tests.integration.test_privileges import admin, secured_db, supabase_server  # noqa: F401

FUNCTIONS = (
    "func_try_duty_lease(text,text,integer)",
    "func_release_duty_lease(text,text)",
    "func_log_maintenance_by_cron()",
)
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def test_api_roles_have_no_privilege_on_leases_and_public_cannot_execute(admin):
    """anon/authenticated: no table privilege, no EXECUTE; PUBLIC: no EXECUTE."""
    for role in ("anon", "authenticated"):
        for privilege in PRIVILEGES:
            assert not admin.execute(
                "SELECT has_table_privilege(%s, 'public.daemon_leases', %s)", [role, privilege]
            ).fetchone()[0], (role, privilege)
        for function in FUNCTIONS:
            assert not admin.execute(
                "SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, function]
            ).fetchone()[0], (role, function)
    for function in FUNCTIONS:
        public = admin.execute(
            "SELECT count(*) FROM aclexplode((SELECT coalesce(proacl, acldefault('f', proowner)) "
            "FROM pg_proc WHERE oid = %s::regprocedure)) WHERE grantee = 0",
            [function],
        ).fetchone()[0]
        assert public == 0, function


def test_leases_have_rls_with_only_the_service_role_policy_and_no_definer(admin):
    """RLS on, one policy for service_role; the functions run with the caller's rights."""
    assert admin.execute(
        "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.daemon_leases'::regclass"
    ).fetchone() == (True,)
    policies = admin.execute(
        "SELECT array(SELECT rolname FROM pg_roles WHERE oid = ANY (p.polroles)) "
        "FROM pg_policy p WHERE p.polrelid = 'public.daemon_leases'::regclass"
    ).fetchall()
    assert policies == [(["service_role"],)]
    for function in FUNCTIONS:
        definer, config = admin.execute(
            "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = %s::regprocedure", [function]
        ).fetchone()
        assert definer is False
        assert "search_path=pg_catalog, public, pg_temp" in config


def test_anon_is_refused_and_service_role_takes_and_releases_a_lease(admin):
    """As the roles themselves."""
    for role in ("anon", "authenticated"):
        admin.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute("SELECT func_try_duty_lease('queue', 'x', 30)")
        admin.execute("RESET ROLE")
    admin.execute("SET ROLE service_role")
    try:
        taken = admin.execute("SELECT func_try_duty_lease('queue', 'sr', 30)").fetchone()[0]
        released = admin.execute("SELECT func_release_duty_lease('queue', 'sr')").fetchone()[0]
        by_cron = admin.execute("SELECT func_log_maintenance_by_cron()").fetchone()[0]
    finally:
        admin.execute("RESET ROLE")
    assert taken["acquired"] is True and released == {"released": True}
    assert by_cron["scheduled"] is False
