-- sql/functions/jobs/periodic.sql
-- Periodic jobs: a cron schedule (table periodic_jobs, sql/migrations/0020) submits one
-- job per tick. The cron expression is evaluated by the daemon (croniter, a well-kept
-- library, rather than a cron parser written again in PL/pgSQL); the database keeps the
-- schedule's next tick and makes each tick's submission happen once: the tick moves
-- forward and the job is submitted in one transaction, conditional on the tick still
-- being the row's, so two daemons racing for a tick submit one job between them (the
-- second waits for the first's row lock, then finds the tick gone). The job also
-- carries the idempotency key periodic:<name>:<tick>, a second guard.

CREATE OR REPLACE FUNCTION public.func_upsert_periodic_job(
    name text, cron text, job jsonb, next_run_at timestamptz, enabled boolean DEFAULT true
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_row public.periodic_jobs%ROWTYPE;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(name) > 200 THEN
        RAISE EXCEPTION 'name must be a non-blank text of at most 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cron IS NULL OR btrim(cron) = '' OR length(cron) > 255 THEN
        RAISE EXCEPTION 'cron must be a cron expression such as ''*/5 * * * *'' (at most 255 characters)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF job IS NULL OR jsonb_typeof(job) <> 'object' OR pg_column_size(job) > 1048576 THEN
        RAISE EXCEPTION 'job must be a JSON object of at most 1 MiB in the form func_submit_job takes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF job ? 'idempotency_key' OR job ? 'run_at' OR job ? 'run_in_seconds' THEN
        RAISE EXCEPTION 'a periodic job''s template sets no idempotency_key, run_at or run_in_seconds: each tick sets them'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF next_run_at IS NULL THEN
        RAISE EXCEPTION 'next_run_at (the first tick) is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The template is checked as a submission would be, without keeping anything.
    BEGIN
        PERFORM hub_internal.func_job_submit(job, NULL);
        RAISE EXCEPTION USING ERRCODE = 'T0001';  -- roll the trial back
    EXCEPTION WHEN SQLSTATE 'T0001' THEN
        NULL;
    END;
    INSERT INTO public.periodic_jobs AS p (name, cron, job, enabled, next_run_at)
    VALUES (name, btrim(cron), job, coalesce(enabled, true), next_run_at)
    ON CONFLICT ON CONSTRAINT periodic_jobs_pkey DO UPDATE SET
        cron = EXCLUDED.cron, job = EXCLUDED.job, enabled = EXCLUDED.enabled,
        next_run_at = EXCLUDED.next_run_at, updated_at = now()
    RETURNING p.* INTO v_row;
    RETURN to_jsonb(v_row);
END;
$$;
COMMENT ON FUNCTION public.func_upsert_periodic_job(text, text, jsonb, timestamptz, boolean) IS
    'Creates or replaces the periodic job called name: cron (UTC, evaluated by the daemon), the job template (as func_submit_job takes it, checked by a trial submission that is rolled back; no idempotency_key/run_at) and the first tick next_run_at. Returns the row.';

CREATE OR REPLACE FUNCTION public.func_delete_periodic_job(name text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_deleted integer;
BEGIN
    DELETE FROM public.periodic_jobs p WHERE p.name = name;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN jsonb_build_object('name', name, 'deleted', v_deleted > 0);
END;
$$;
COMMENT ON FUNCTION public.func_delete_periodic_job(text) IS
    'Removes a periodic job (jobs it already submitted stay). Returns {name, deleted}.';

CREATE OR REPLACE FUNCTION public.func_list_periodic_jobs(due_only boolean DEFAULT false)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'now', now(),
        'rows', coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.next_run_at, p.name), '[]'::jsonb))
      FROM public.periodic_jobs p
     WHERE NOT due_only OR (p.enabled AND p.next_run_at <= now())
$$;
COMMENT ON FUNCTION public.func_list_periodic_jobs(boolean) IS
    'The periodic jobs (due_only: only the enabled ones whose tick has come), earliest tick first, with the database''s now: {now, rows: [{name, cron, job, enabled, next_run_at, last_run_at, last_job_id, ...}]}.';

CREATE OR REPLACE FUNCTION public.func_enqueue_periodic_job(name text, tick timestamptz, next_run_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_job jsonb;
    v_user text;
    v_result jsonb;
BEGIN
    IF next_run_at IS NULL OR tick IS NULL OR next_run_at <= tick THEN
        RAISE EXCEPTION 'next_run_at must come after tick' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE public.periodic_jobs p
       SET next_run_at = next_run_at, last_run_at = now(), updated_at = now()
     WHERE p.name = name AND p.enabled AND p.next_run_at = tick AND tick <= now()
    RETURNING p.job INTO v_job;
    IF v_job IS NULL THEN  -- another daemon took this tick, or it is not due
        RETURN jsonb_build_object('name', name, 'submitted', false);
    END IF;
    v_result := hub_internal.func_job_submit(
        v_job || jsonb_build_object('idempotency_key',
                                    left(format('periodic:%s:%s', name, to_char(tick AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')), 255)),
        NULL);
    UPDATE public.periodic_jobs p SET last_job_id = (v_result ->> 'job_id')::uuid WHERE p.name = name;
    RETURN jsonb_build_object('name', name, 'submitted', NOT (v_result ->> 'duplicate')::boolean,
                              'job', v_result);
END;
$$;
COMMENT ON FUNCTION public.func_enqueue_periodic_job(text, timestamptz, timestamptz) IS
    'Submits the job of a periodic job''s due tick and moves its next tick to next_run_at, in one transaction, only if tick is still the row''s next_run_at (so concurrent daemons submit each tick once). Returns {name, submitted, job}; submitted=false when the tick was taken or is not due.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_upsert_periodic_job(text, text, jsonb, timestamptz, boolean)',
        'public.func_delete_periodic_job(text)',
        'public.func_list_periodic_jobs(boolean)',
        'public.func_enqueue_periodic_job(text, timestamptz, timestamptz)'
    ]::regprocedure[]);
