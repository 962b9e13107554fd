"""Privileges of the dashboard's summary function, on a cluster with Supabase's roles.

The fixtures are test_privileges.py's: a cluster with anon/authenticated/service_role and
a database migrated after Supabase's default grants (ALL to every API role) were set.
"""

# ruff: noqa: F811

from __future__ import annotations

import psycopg
import pytest

from tests.integration.logrows import entry, insert

# Imported fixtures, which the tests take as parameters of the same name.
from tests.integration.test_privileges import admin, secured_db, supabase_server  # noqa: F401

SUMMARY = "func_log_dashboard_summary(integer,text,text)"


def test_api_roles_may_not_execute_the_summary_and_public_has_no_grant(admin):
    """anon and authenticated: no EXECUTE; PUBLIC has no EXECUTE entry either."""
    for role in ("anon", "authenticated"):
        assert not admin.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, SUMMARY]
        ).fetchone()[0], role
    public = admin.execute(
        "SELECT count(*) FROM aclexplode((SELECT coalesce(proacl, acldefault('f', proowner)) "
        "FROM pg_proc WHERE oid = %s::regprocedure)) WHERE grantee = 0",
        [SUMMARY],
    ).fetchone()[0]
    assert public == 0


def test_summary_is_not_security_definer_and_fixes_its_search_path(admin):
    """It reads with its caller's rights (RLS applies) and resolves names safely."""
    definer, config = admin.execute(
        "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = %s::regprocedure", [SUMMARY]
    ).fetchone()
    assert definer is False
    assert any(setting.startswith("search_path=") for setting in config or [])


def test_anon_is_refused_and_service_role_reads_the_summary_through_rls(admin):
    """As the roles themselves: anon gets permission denied; service_role counts its rows."""
    insert(admin, [entry(source_id="dash-priv", worker_id="dash-priv", log_level="ERROR")])
    admin.execute("SET ROLE anon")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("SELECT func_log_dashboard_summary()")
    admin.execute("RESET ROLE")
    admin.execute("SET ROLE service_role")
    try:
        summary = admin.execute(
            "SELECT func_log_dashboard_summary(worker_id => 'dash-priv')"
        ).fetchone()[0]
    finally:
        admin.execute("RESET ROLE")
    assert summary["active_workers"] == 1
    assert summary["error_rate"] == 1
    assert sum(summary["errors_per_minute"]) == 1
