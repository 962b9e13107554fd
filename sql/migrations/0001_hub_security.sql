-- 0001_hub_security.sql
-- The hub's schemas, and the one helper every later file calls on the objects it
-- creates, so the privilege rules live in one place.
--   * public holds the hub's tables and its API: the functions clients call, over SQL
--     or Supabase's REST gateway (PostgREST exposes public);
--   * hub_internal holds what only the hub's own functions call (helpers, statement
--     builders, the rollup trigger). The REST gateway does not expose it, so the REST
--     contract is exactly the documented functions. service_role may use it, because
--     the public functions it calls run with its rights;
--   * extensions holds pg_trgm when the hub installs it (Supabase's convention), so the
--     extension's functions are not exposed through public either.
-- The privilege rules (func_hub_secure):
--   * RLS on every hub table (no policy for anon/authenticated: they see nothing);
--   * nothing granted to PUBLIC, anon or authenticated: Supabase's default privileges
--     grant ALL on new objects in "public" to both, so we revoke explicitly;
--   * service_role (Supabase's server key) gets what the RPC contract needs.
-- On plain PostgreSQL, where anon/authenticated/service_role do not exist, the role
-- steps are skipped and only the owner (the role that ran the migrations) has access.
-- Forward-only: tables, indexes and data changes live in these numbered files, each
-- applied once; functions and views live in sql/functions/ (re-applied when changed).
-- Every numbered file is idempotent too, so the whole script runs in the SQL editor
-- (`orchestrator migrate --print-sql`).

CREATE SCHEMA IF NOT EXISTS hub_internal;
COMMENT ON SCHEMA hub_internal IS
    'Functions of the orchestrator hub that only its own functions call. Not exposed by the REST gateway; not an API.';
REVOKE ALL ON SCHEMA hub_internal FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS extensions;

CREATE OR REPLACE FUNCTION hub_internal.func_hub_secure(
    p_tables regclass[] DEFAULT '{}',
    p_functions regprocedure[] DEFAULT '{}'
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_table regclass;
    v_function regprocedure;
    v_kind "char";
    v_role text;
    v_has_service_role boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role');
BEGIN
    FOREACH v_table IN ARRAY p_tables LOOP
        SELECT relkind INTO v_kind FROM pg_class WHERE oid = v_table;
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', v_table);
        IF v_kind IN ('r', 'p') THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_table);
        END IF;
        FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
                EXECUTE format('REVOKE ALL ON %s FROM %I', v_table, v_role);
            END IF;
        END LOOP;
        IF v_has_service_role THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO service_role', v_table);
        END IF;
    END LOOP;

    FOREACH v_function IN ARRAY p_functions LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_function);
        FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
                EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_function, v_role);
            END IF;
        END LOOP;
        IF v_has_service_role THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_function);
        END IF;
    END LOOP;
END;
$$;

-- A row-level policy that lets service_role (and nobody else) through RLS on a hub
-- table. Supabase's service_role also has BYPASSRLS; the policy makes the same grants
-- work on a self-hosted PostgreSQL where a service_role was created without it.
CREATE OR REPLACE FUNCTION hub_internal.func_hub_service_role_policy(p_table regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role')
       AND NOT EXISTS (SELECT 1 FROM pg_policy
                       WHERE polrelid = p_table AND polname = 'hub_service_role_all') THEN
        EXECUTE format(
            'CREATE POLICY hub_service_role_all ON %s FOR ALL TO service_role USING (true) WITH CHECK (true)',
            p_table);
    END IF;
END;
$$;

COMMENT ON FUNCTION hub_internal.func_hub_secure(regclass[], regprocedure[]) IS
    'Applies the hub''s privilege rules to the given tables/views and functions: RLS on, nothing for PUBLIC/anon/authenticated, service_role only. Called by every migration; idempotent.';
COMMENT ON FUNCTION hub_internal.func_hub_service_role_policy(regclass) IS
    'Creates the single RLS policy of a hub table: service_role may read and write, nobody else. No-op where service_role does not exist.';

-- These two are administration helpers: only the owner calls them, not even service_role.
DO $$
DECLARE
    v_role text;
BEGIN
    REVOKE ALL ON FUNCTION hub_internal.func_hub_secure(regclass[], regprocedure[]) FROM PUBLIC;
    REVOKE ALL ON FUNCTION hub_internal.func_hub_service_role_policy(regclass) FROM PUBLIC;
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON SCHEMA hub_internal FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON FUNCTION hub_internal.func_hub_secure(regclass[], regprocedure[]) FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON FUNCTION hub_internal.func_hub_service_role_policy(regclass) FROM %I', v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT USAGE ON SCHEMA hub_internal TO service_role;
    END IF;
END;
$$;
