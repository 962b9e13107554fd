"""Supabase-style security, checked on a cluster where anon/authenticated/service_role exist.

Roles are cluster-wide, so with the embedded server this module starts a second one of
its own; with TEST_DATABASE_URL it creates the roles there when they are missing, with
Supabase's attributes (service_role has BYPASSRLS there), and otherwise takes them as
they are: a shared cluster's roles belong to whoever made them, so no test here alters
or drops one, and every test passes with service_role with or without BYPASSRLS.
Supabase's default privileges (ALL on new objects in public to anon/authenticated/
service_role) are reproduced before migrating, to prove the migrations revoke what
Supabase grants.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from tests.conftest import PgServer, with_dbname
from tests.integration.logrows import entry, insert
from tests.support.roles import create_supabase_roles

# Supabase's API roles as its initial schema creates them (supabase/postgres).
SUPABASE_DEFAULTS = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
"""


@pytest.fixture(scope="module")
def supabase_server() -> Iterator[PgServer]:
    """A server whose cluster has Supabase's three API roles."""
    url = os.environ.get("TEST_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="hub-test-supabase-") as tmp:
        embedded = None if url else start_embedded(Path(tmp) / "pgdata")
        server = PgServer(url or with_dbname(embedded.url, "postgres"), embedded)
        with server.admin() as conn:
            create_supabase_roles(conn)
        try:
            yield server
        finally:
            if embedded is not None:
                embedded.stop()


@pytest.fixture
def no_bypass_role(supabase_server: PgServer) -> Iterator[str]:
    """A role of this test's own that is a member of service_role without BYPASSRLS (as a
    login made for the hub on a self-hosted server is), dropped afterwards: whether
    service_role itself bypasses RLS depends on who created it on this cluster."""
    role = f"hub_test_nobypass_{uuid.uuid4().hex[:8]}"
    with supabase_server.admin() as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN NOBYPASSRLS INHERIT IN ROLE service_role")
    try:
        yield role
    finally:
        with supabase_server.admin() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def with_role(url: str, role: str) -> str:
    """The URL with every session of it running as ``role`` (libpq ``options``)."""
    return url + ("&" if "?" in url else "?") + f"options=-c%20role%3D{role}"


@pytest.fixture(scope="module")
def secured_db(supabase_server: PgServer) -> Iterator[str]:
    """A database migrated after Supabase's default grants were put in place."""
    name = supabase_server.create_database()
    url = supabase_server.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SUPABASE_DEFAULTS)
        migrate.migrate(conn)
        conn.execute("SELECT func_maintain_log_partitions(days_ahead => 5)")
    yield url
    supabase_server.drop_database(name)


@pytest.fixture
def admin(secured_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(secured_db, autocommit=True) as conn:
        yield conn


HUB_FUNCTIONS = """
SELECT p.oid, p.oid::regprocedure::text AS name, p.prosecdef, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace IN ('public'::regnamespace, 'hub_internal'::regnamespace)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                   AND d.objid = p.oid AND d.deptype = 'e')
"""
HUB_RELATIONS = """
SELECT c.oid, c.relname, c.relkind, c.relrowsecurity FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
"""


def test_anon_and_authenticated_can_touch_no_table_or_view(admin):
    """Not one privilege on any hub relation, partitions included, despite the defaults."""
    relations = admin.execute(HUB_RELATIONS).fetchall()
    assert len(relations) >= 10
    leaks = [
        (name, role, privilege)
        for oid, name, _, _ in relations
        for role in ("anon", "authenticated")
        for privilege in (
            "SELECT",
            "INSERT",
            "UPDATE",
            "DELETE",
            "TRUNCATE",
            "REFERENCES",
            "TRIGGER",
        )
        if admin.execute(
            "SELECT has_table_privilege(%s, %s::oid, %s)", [role, oid, privilege]
        ).fetchone()[0]
    ]
    assert leaks == []


def test_rls_is_enabled_on_every_table_without_policies_for_api_roles(admin):
    """RLS on every table; the only policy names service_role."""
    tables = [
        (name, rls)
        for _, name, kind, rls in admin.execute(HUB_RELATIONS).fetchall()
        if kind in ("r", "p")
    ]
    assert [name for name, rls in tables if not rls] == []
    policy_roles = admin.execute(
        "SELECT DISTINCT r.rolname FROM pg_policy p, unnest(p.polroles) AS role_oid "
        "JOIN pg_roles r ON r.oid = role_oid"
    ).fetchall()
    assert policy_roles == [("service_role",)]


def test_no_function_is_executable_by_public_anon_or_authenticated(admin):
    """EXECUTE revoked from PUBLIC, anon and authenticated on every hub function."""
    functions = admin.execute(HUB_FUNCTIONS).fetchall()
    assert len(functions) >= 8
    for oid, name, _, _ in functions:
        for role in ("anon", "authenticated"):
            assert not admin.execute(
                "SELECT has_function_privilege(%s, %s::oid, 'EXECUTE')", [role, oid]
            ).fetchone()[0], (role, name)
        public = admin.execute(
            "SELECT count(*) FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
            "WHERE p.oid = %s AND a.grantee = 0",
            [oid],
        ).fetchone()[0]
        assert public == 0, f"PUBLIC may execute {name}"


def test_service_role_may_call_the_rpc_contract_but_not_the_admin_helpers(admin):
    """service_role runs the RPC functions; the privilege helpers are owner-only."""
    allowed = [
        "func_insert_logs_batch(json)",
        "func_cleanup_old_logs(integer)",
        "func_log_statistics(timestamp with time zone,timestamp with time zone)",
        "func_maintain_log_partitions(integer,integer)",
    ]
    for name in allowed:
        assert admin.execute(
            "SELECT has_function_privilege('service_role', %s, 'EXECUTE')", [name]
        ).fetchone()[0], name
    for name in [
        "hub_internal.func_hub_secure(regclass[],regprocedure[])",
        "hub_internal.func_hub_service_role_policy(regclass)",
    ]:
        assert not admin.execute(
            "SELECT has_function_privilege('service_role', %s, 'EXECUTE')", [name]
        ).fetchone()[0], name


def test_security_definer_functions_fix_their_search_path(admin):
    """SECURITY DEFINER only with a fixed search_path."""
    for _, name, definer, config in admin.execute(HUB_FUNCTIONS).fetchall():
        if definer:
            assert any(setting.startswith("search_path=") for setting in (config or [])), name


def test_anon_is_refused_and_service_role_works_through_rls(admin):
    """As the roles themselves: anon gets permission denied, service_role inserts and reads."""
    admin.execute("SET ROLE anon")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("SELECT func_insert_logs_batch('[]')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("SELECT count(*) FROM system_logs")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("SELECT func_cleanup_old_logs(0)")
    admin.execute("RESET ROLE")
    admin.execute("SET ROLE service_role")
    assert insert(admin, [entry(message="from service_role")]).inserted == 1
    assert admin.execute(
        "SELECT count(*) FROM system_logs WHERE message = 'from service_role'"
    ).fetchone() == (1,)
    assert admin.execute("SELECT func_cleanup_old_logs(48)->>'success'").fetchone() == ("true",)
    admin.execute("RESET ROLE")


def _sink_sends_one(url: str, source_id: str) -> bool:
    """Ships one record through PostgresSink at ``url``; whether it could COPY directly."""
    from orchestrator.logs.sinks.postgres import PostgresSink
    from tests.integration.logrows import handler_entry

    sink = PostgresSink(url)
    try:
        result = sink.send([handler_entry(source_id=source_id, message="m", worker_id=None)])
        assert result.inserted == 1
        return sink.copier.direct_allowed
    finally:
        sink.close()


def test_service_role_under_rls_falls_back_from_copy_to_the_staged_path(no_bypass_role, secured_db):
    """COPY FROM is refused on an RLS table for a role without BYPASSRLS; the sink falls
    back to INSERT through the staged functions and the records still land."""
    assert _sink_sends_one(with_role(secured_db, no_bypass_role), "rls") is False
    with psycopg.connect(secured_db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM system_logs WHERE source_id = 'rls'"
        ).fetchone() == (1,)


def test_service_role_copies_directly_exactly_when_it_bypasses_rls(admin, secured_db):
    """As service_role itself: Supabase's (BYPASSRLS) takes the direct COPY, one made
    without it takes the staged path; the record lands either way."""
    [bypass] = admin.execute(
        "SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'"
    ).fetchone()
    assert _sink_sends_one(with_role(secured_db, "service_role"), "as-service-role") is bypass
    assert admin.execute(
        "SELECT count(*) FROM system_logs WHERE source_id = 'as-service-role'"
    ).fetchone() == (1,)


JOB_TABLES = (
    "jobs",
    "job_queue",
    "job_events",
    "hub_users",
    "concurrency_limits",
    "approval_rules",
    "approval_requests",
    "queue_pauses",
    "periodic_jobs",
)
JOB_RPC = [
    "func_upsert_hub_user(text,text,text)",
    "func_set_concurrency_limit(text,text,integer)",
    "func_upsert_approval_rule(text,text,text,numeric,integer,boolean,boolean)",
    "func_submit_job(jsonb)",
    "func_approve_request(uuid,text,text)",
    "func_reject_request(uuid,text,text)",
    "func_claim_jobs(text,integer,integer,text,jsonb)",
    "func_extend_job_leases(text,integer,jsonb)",
    "func_complete_job(uuid,uuid,jsonb)",
    "func_fail_job(uuid,uuid,text,boolean)",
    "func_release_job(uuid,uuid,text)",
    "func_cancel_job(uuid,text,text)",
    "func_reap_dead_workers(integer)",
    "func_expire_approvals()",
    "func_queue_statistics()",
    "func_list_jobs(text,text,uuid,integer,text,text)",
    "func_get_job(uuid)",
    "func_job_events_after(bigint,jsonb,jsonb,jsonb,integer)",
    "func_list_active_provider_jobs(text,uuid,integer)",
    "func_record_provider_status(uuid,text,text,jsonb,uuid)",
    "func_submit_jobs(jsonb)",
    "func_complete_jobs(jsonb)",
    "func_complete_jobs_and_claim(jsonb,text,integer,integer,text,jsonb)",
    "func_rerun_job(uuid,text)",
    "func_pause_queue(text,text,text,text)",
    "func_resume_queue(text,text)",
    "func_upsert_periodic_job(text,text,jsonb,timestamptz,boolean)",
    "func_delete_periodic_job(text)",
    "func_list_periodic_jobs(boolean)",
    "func_enqueue_periodic_job(text,timestamptz,timestamptz)",
    "func_prune_jobs(integer,integer)",
]


def test_job_tables_have_rls_and_no_api_role_privileges(admin):
    """Every job table: RLS on, nothing for anon/authenticated, the event sequence too."""
    for table in (*JOB_TABLES, "job_events_event_id_seq"):
        for role in ("anon", "authenticated"):
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                if table.endswith("_seq") and privilege in ("INSERT", "DELETE"):
                    continue
                assert not admin.execute(
                    "SELECT has_table_privilege(%s, %s, %s)", [role, f"public.{table}", privilege]
                ).fetchone()[0], (role, table, privilege)
    for table in JOB_TABLES:
        assert admin.execute(
            "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", [f"public.{table}"]
        ).fetchone() == (True,), table


def test_job_functions_are_for_service_role_only(admin):
    """The job RPC contract: service_role may execute it, anon/authenticated may not."""
    for name in JOB_RPC:
        assert admin.execute(
            "SELECT has_function_privilege('service_role', %s, 'EXECUTE')", [name]
        ).fetchone()[0], name
        for role in ("anon", "authenticated"):
            assert not admin.execute(
                "SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, name]
            ).fetchone()[0], (role, name)


def test_service_role_runs_a_job_through_rls_and_anon_is_refused(admin):
    """As the roles themselves: service_role submits, claims and completes; anon gets nothing."""
    admin.execute("SET ROLE anon")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("SELECT func_claim_jobs('w')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        admin.execute("SELECT count(*) FROM jobs")
    admin.execute("RESET ROLE")
    admin.execute("SET ROLE service_role")
    try:
        admin.execute("SELECT func_upsert_hub_user('svc', 'org-svc')")
        admin.execute(
            """SELECT func_submit_job('{"user_id": "svc", "job_type": "t", "payload": {"command": "true"}}')"""
        )
        job = admin.execute("SELECT func_claim_jobs('w-svc') -> 'jobs' -> 0").fetchone()[0]
        done = admin.execute(
            "SELECT func_complete_job(%s, %s)", [job["job_id"], job["lease_token"]]
        ).fetchone()[0]
        assert done["accepted"] is True
        assert admin.execute(
            "SELECT count(*) FROM job_events WHERE job_id = %s", [job["job_id"]]
        ).fetchone() == (3,)
    finally:
        admin.execute("RESET ROLE")


def test_service_role_logs_are_counted_and_it_reads_the_rollup_backed_statistics(admin):
    """The rollup trigger runs as its owner (service_role needs no right to forge counts
    through it), and service_role reads statistics through RLS on the rollups."""
    admin.execute("SET ROLE service_role")
    try:
        assert insert(admin, [entry(source_id="counted-as-service-role")]).inserted == 1
        [stats] = admin.execute(
            "SELECT func_log_statistics(now() - interval '2 hours', now() + interval '1 hour')"
        ).fetchone()
    finally:
        admin.execute("RESET ROLE")
    assert {"source_type": "worker", "source_id": "counted-as-service-role"}.items() <= next(
        s for s in stats["by_source"] if s["source_id"] == "counted-as-service-role"
    ).items()
    assert admin.execute(
        "SELECT sum(count) FROM system_log_counts "
        "WHERE resolution = 'hour' AND source_id = 'counted-as-service-role'"
    ).fetchone() == (1,)


def test_internals_live_outside_the_exposed_schema(admin):
    """Supabase's REST gateway exposes public: only API functions live there. The
    helpers are in hub_internal, which anon and authenticated may not even look into,
    and pg_trgm (when installed) is not in public either."""
    public = {
        row[0]
        for row in admin.execute(
            "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
        )
    }
    internal = {
        row[0]
        for row in admin.execute(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'hub_internal'::regnamespace"
        )
    }
    for helper in (
        "func_job_free_slots",
        "func_job_candidates",
        "func_query_logs_statement",
        "func_log_errors_summary_statement",
        "func_job_settle",
        "func_uuid_v7",
    ):
        assert helper in internal and helper not in public, helper
    for role in ("anon", "authenticated"):
        assert not admin.execute(
            "SELECT has_schema_privilege(%s, 'hub_internal', 'USAGE')", [role]
        ).fetchone()[0]
    assert admin.execute(
        "SELECT has_schema_privilege('service_role', 'hub_internal', 'USAGE')"
    ).fetchone()[0]
    trgm_in_public = admin.execute(
        "SELECT count(*) FROM pg_extension e WHERE e.extname = 'pg_trgm' "
        "AND e.extnamespace = 'public'::regnamespace"
    ).fetchone()[0]
    assert trgm_in_public == 0


def test_service_role_appends_to_the_audit_trail_but_never_changes_it(admin):
    """As service_role: func_audit_append and reads work; UPDATE, DELETE and TRUNCATE
    of audit_log are refused by privilege; retention only through func_audit_prune."""
    admin.execute("SET ROLE service_role")
    try:
        appended = admin.execute(
            "SELECT func_audit_append('auth_failed', 'authenticate', actor_ip => '10.1.2.3')"
        ).fetchone()[0]
        assert appended["id"] is not None
        assert admin.execute("SELECT func_audit_verify()").fetchone()[0]["valid"] is True
        for statement in (
            "UPDATE audit_log SET actor = 'eve'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                admin.execute(statement)
        pruned = admin.execute("SELECT func_audit_prune(1)").fetchone()[0]
        assert pruned["deleted"] == 0  # nothing is a day old; the newest is always kept
    finally:
        admin.execute("RESET ROLE")
