"""The read functions of sql/functions/logs/queries.sql and statistics.sql under Supabase-style roles: service_role only."""

from __future__ import annotations

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.query import LogFilter, query_logs
from tests.integration.logrows import entry, insert
from tests.integration.test_privileges import admin, secured_db, supabase_server

__all__ = ["admin", "secured_db", "supabase_server"]  # fixtures shared with the sibling

READERS = [
    "hub_internal.func_log_severity(text)",
    "hub_internal.func_log_severities(jsonb)",
    "hub_internal.func_like_literal(text)",
    "hub_internal.func_query_logs_statement(timestamp with time zone,timestamp with time zone,text,jsonb,"
    "text,text,text,uuid,integer,text,timestamp with time zone,uuid,boolean,jsonb)",
    "hub_internal.func_log_errors_summary_statement(text,text)",
    "func_log_cursor(uuid,timestamp with time zone,timestamp with time zone)",
    "func_query_logs(timestamp with time zone,timestamp with time zone,text,jsonb,text,text,"
    "text,uuid,integer,text,timestamp with time zone,uuid,boolean,integer,jsonb)",
    "func_task_timeline(uuid,timestamp with time zone,uuid,integer)",
    "func_worker_timeline(text,timestamp with time zone,timestamp with time zone,"
    "timestamp with time zone,uuid,integer)",
    "func_log_errors_summary(timestamp with time zone,timestamp with time zone,text,text,integer)",
]


@pytest.mark.parametrize("function", READERS)
def test_only_service_role_may_execute_the_readers(admin, function):
    """EXECUTE for service_role; none for anon and authenticated."""
    can = {
        role: admin.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, function]
        ).fetchone()[0]
        for role in ("service_role", "anon", "authenticated")
    }
    assert can == {"service_role": True, "anon": False, "authenticated": False}
    assert admin.execute(
        "SELECT obj_description(%s::regprocedure, 'pg_proc') IS NOT NULL", [function]
    ).fetchone()[0], f"{function} has no COMMENT"


def test_service_role_reads_through_rls_and_anon_is_refused(admin):
    """As the roles themselves: service_role gets its rows, anon permission denied."""
    insert(admin, [entry(message="readable")])
    admin.execute("SET ROLE service_role")
    try:
        page = query_logs(PsycopgExecutor(admin), LogFilter(search="readable"))
        assert [r.message for r in page.rows] == ["readable"]
    finally:
        admin.execute("RESET ROLE")
    admin.execute("SET ROLE anon")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute("SELECT func_query_logs()")
    finally:
        admin.execute("RESET ROLE")
