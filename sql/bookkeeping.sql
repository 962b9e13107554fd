-- sql/bookkeeping.sql
-- The migration runner's own records, created before anything else it applies:
--   schema_migrations  one row per applied numbered file (sql/migrations/), with the
--                      checksum it had, so an edit after the fact is caught;
--   schema_functions   one row per function file (sql/functions/) as last applied: its
--                      checksum, and the functions and views it defined, so a function
--                      whose signature changed, or that left the files, is dropped.
-- Same privilege rules as the hub tables, except that service_role may read both (never
-- write): every command checks the schema is current before it starts, also when it
-- runs as a login that may not migrate.

CREATE TABLE IF NOT EXISTS public.schema_migrations (
    filename    text        PRIMARY KEY,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text        NOT NULL DEFAULT current_user,
    duration_ms integer     NOT NULL
);
CREATE TABLE IF NOT EXISTS public.schema_functions (
    filename    text        PRIMARY KEY,
    checksum    text        NOT NULL,
    defines     text[]      NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text        NOT NULL DEFAULT current_user
);
COMMENT ON TABLE public.schema_migrations IS
    'The numbered files of sql/migrations/ applied to this database, with their checksums (written by orchestrator migrate).';
COMMENT ON TABLE public.schema_functions IS
    'The function files of sql/functions/ as last applied: checksum and the functions and views each defines (written by orchestrator migrate).';

DO $$
DECLARE
    v_table text;
    v_role text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['public.schema_migrations', 'public.schema_functions'] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', v_table);
        FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
                EXECUTE format('REVOKE ALL ON %s FROM %I', v_table, v_role);
            END IF;
        END LOOP;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
            EXECUTE format('GRANT SELECT ON %s TO service_role', v_table);
            IF NOT EXISTS (SELECT 1 FROM pg_policy
                            WHERE polrelid = v_table::regclass AND polname = 'hub_service_role_read') THEN
                EXECUTE format('CREATE POLICY hub_service_role_read ON %s FOR SELECT TO service_role USING (true)',
                               v_table);
            END IF;
        END IF;
    END LOOP;
END;
$$;
