-- 0007_hub_internal_schema.sql
-- Brings a database made by orchestrator-hub 0.1 (the migrations 0001_hub_security ..
-- 0015_queue_depth of that layout) to this one; on a new database it changes nothing.
-- In 0.1 every function lived in public, so Supabase's REST gateway offered the internal
-- helpers (free slots, claim candidates, statement builders...) as endpoints to
-- service_role, and pg_trgm was created in public, exposing its functions to anon.
--   * the column defaults that called public.func_uuid_v7() call the hub_internal one;
--   * the rollup trigger is dropped (sql/functions/logs/rollups.sql creates it again in
--     the same transaction, on hub_internal.func_log_rollups_trigger(), so no insert is
--     left uncounted: the DROP holds its lock on system_logs until the commit);
--   * the public copies of the functions that now live in hub_internal are dropped;
--   * pg_trgm is moved to the extensions schema (Supabase's database linter, lint 0014
--     "extension in public"). SQL of your own that calls pg_trgm's functions unqualified
--     then needs extensions on its search_path; the hub's index keeps working as it is.

ALTER TABLE public.jobs ALTER COLUMN job_id SET DEFAULT hub_internal.func_uuid_v7();
ALTER TABLE public.approval_requests ALTER COLUMN request_id SET DEFAULT hub_internal.func_uuid_v7();

DO $$
DECLARE
    v_function text;
BEGIN
    IF to_regprocedure('public.func_log_rollups_trigger()') IS NOT NULL THEN
        DROP TRIGGER IF EXISTS system_logs_rollup ON public.system_logs;
    END IF;
    FOREACH v_function IN ARRAY ARRAY[
        'public.func_hub_secure(regclass[], regprocedure[])',
        'public.func_hub_service_role_policy(regclass)',
        'public.func_uuid_v7(timestamptz)',
        'public.func_parse_log_timestamp(text)',
        'public.func_log_severity(text)',
        'public.func_log_severities(jsonb)',
        'public.func_like_literal(text)',
        'public.func_query_logs_statement(timestamptz, timestamptz, text, jsonb, text, text, text, uuid, integer, text, timestamptz, uuid, boolean)',
        'public.func_log_errors_summary_statement(text, text)',
        'public.func_log_message_fingerprint(text)',
        'public.func_log_rollups_trigger()',
        'public.func_log_rollups_rebuild(timestamptz, timestamptz)',
        'public.func_log_counts(timestamptz, timestamptz, text, text, boolean)',
        'public.func_job_summary(public.jobs)',
        'public.func_job_free_slots(text[], text[])',
        'public.func_job_requeue_lost(uuid[], text, text)',
        'public.func_job_candidates(text, text[], text[], integer)',
        'public.func_job_decide(uuid, text, text, boolean)',
        'public.func_job_settle(uuid, uuid, text, jsonb, text, boolean, text)'
    ] LOOP
        IF to_regprocedure(v_function) IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION %s', to_regprocedure(v_function));
        END IF;
    END LOOP;

    IF EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                WHERE e.extname = 'pg_trgm' AND n.nspname = 'public') THEN
        BEGIN
            ALTER EXTENSION pg_trgm SET SCHEMA extensions;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm stays in public: only its owner may move it (ALTER EXTENSION pg_trgm SET SCHEMA extensions)';
        END;
    END IF;
END;
$$;
