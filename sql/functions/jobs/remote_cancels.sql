-- sql/functions/jobs/remote_cancels.sql
-- A job cancelled in the hub after an external provider accepted it must be stopped
-- there too, or the GPU keeps running (and billing) a job nobody wants. func_cancel_job
-- ends the job in the hub at once; from then on it is no longer "active", so the status
-- poller never looks at it again. These functions give the daemon its own list:
-- cancelled jobs whose provider copy was last seen active (index jobs_remote_copy_idx, 0097).
-- The daemon asks the provider to cancel each and records the answer here, which takes
-- the job off the list; a transient provider error leaves it on the list for the next pass.

CREATE OR REPLACE FUNCTION public.func_list_remote_cancels(
    provider text, after_job_id uuid DEFAULT NULL, row_limit integer DEFAULT 500
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_rows jsonb;
    v_count integer;
BEGIN
    IF provider IS NULL OR btrim(provider) = '' THEN
        RAISE EXCEPTION 'provider must be a non-blank text' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF row_limit IS NULL OR row_limit NOT BETWEEN 1 AND 5000 THEN
        RAISE EXCEPTION 'row_limit must be between 1 and 5000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'job_id', x.job_id, 'provider_job_id', x.provider_job_id, 'status', x.status,
               'provider_status', x.provider_status) ORDER BY x.job_id), '[]'::jsonb), count(*)
      INTO v_rows, v_count
      FROM (SELECT j.job_id, j.provider_job_id, j.status, j.provider_status FROM public.jobs j
             WHERE j.provider = provider AND j.status = 'cancelled' AND j.provider_job_id IS NOT NULL
               AND j.provider_status IN ('pending', 'uploading', 'queued', 'running')
               AND (after_job_id IS NULL OR j.job_id > after_job_id)
             ORDER BY j.job_id
             LIMIT row_limit + 1) x;
    IF v_count > row_limit THEN
        v_rows := v_rows - row_limit;
    END IF;
    RETURN jsonb_build_object('rows', v_rows, 'more', v_count > row_limit,
                              'next', CASE WHEN v_count > row_limit THEN v_rows -> (row_limit - 1) -> 'job_id' END);
END;
$$;
COMMENT ON FUNCTION public.func_list_remote_cancels(text, uuid, integer) IS
    'Jobs of a provider cancelled in the hub whose copy at the provider was last seen active (pending, uploading, queued, running): the daemon must still cancel them there. Oldest first, keyset-paged like func_list_active_provider_jobs: {rows: [{job_id, provider_job_id, status, provider_status}], more, next}.';

-- What the provider answered for a cancelled job: its status there (a cancel request
-- may also find the job already finished), or the error that made the cancel fail for
-- good. Also records the provider's job id of a job cancelled while it was being
-- submitted, so that one is cancelled by the same pass.
CREATE OR REPLACE FUNCTION public.func_record_remote_cancel(
    job_id uuid, provider_status text, provider_job_id text DEFAULT NULL,
    details jsonb DEFAULT '{}'::jsonb, error text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_status text := lower(btrim(provider_status));
    v_details jsonb := coalesce(nullif(details, 'null'::jsonb), '{}'::jsonb);
    j public.jobs%ROWTYPE;
    v_pjid text;
    v_event text;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF error IS NOT NULL THEN
        v_status := 'cancel_failed';
    ELSIF v_status IS NULL OR v_status NOT IN ('pending', 'uploading', 'queued', 'running', 'completed', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'unknown provider status %; accepted: pending, uploading, queued, running, completed, failed, cancelled (or pass error)',
                        coalesce(quote_literal(provider_status), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(v_details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object, got a JSON %', jsonb_typeof(v_details)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the lock order of every job function: the queue entry, then the job
    PERFORM 1 FROM public.job_queue q WHERE q.job_id = job_id FOR UPDATE;
    SELECT * INTO j FROM public.jobs jb WHERE jb.job_id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job %', job_id USING ERRCODE = 'P0001';
    END IF;
    IF j.status <> 'cancelled' THEN
        RAISE EXCEPTION 'job % is %: a remote cancellation is recorded only for a job cancelled in the hub',
                        job_id, j.status USING ERRCODE = 'P0001';
    END IF;
    v_pjid := coalesce(provider_job_id, j.provider_job_id);
    IF v_pjid IS NULL THEN
        RAISE EXCEPTION 'job % has no provider job id: pass provider_job_id', job_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF j.provider_status IS NOT DISTINCT FROM v_status AND j.provider_job_id IS NOT DISTINCT FROM v_pjid THEN
        RETURN jsonb_build_object('changed', false, 'status', j.status, 'provider_status', v_status);
    END IF;
    UPDATE public.jobs jb
       SET provider_status = v_status, provider_job_id = v_pjid,
           provider_details = CASE WHEN error IS NULL THEN v_details ELSE jb.provider_details END,
           updated_at = now()
     WHERE jb.job_id = job_id;
    v_event := CASE WHEN error IS NOT NULL THEN 'provider_cancel_failed'
                    WHEN v_status IN ('completed', 'failed', 'cancelled') THEN 'provider_cancelled'
                    ELSE 'provider_status' END;
    INSERT INTO public.job_events (job_id, event_type, from_status, to_status, details)
    VALUES (job_id, v_event, j.provider_status, v_status,
            jsonb_strip_nulls(jsonb_build_object('provider_job_id', v_pjid, 'error', error,
                                                 'details', nullif(v_details, '{}'::jsonb))));
    RETURN jsonb_build_object('changed', true, 'status', j.status, 'provider_status', v_status);
END;
$$;
COMMENT ON FUNCTION public.func_record_remote_cancel(uuid, text, text, jsonb, text) IS
    'Records what the provider answered when the daemon cancelled there a job cancelled in the hub: provider_status is the provider''s status after the request (cancelled, or completed/failed when it had already finished, or still active when the provider stops it asynchronously: the job stays on func_list_remote_cancels); error (a permanent refusal) records provider_status cancel_failed and takes the job off the list. Writes one event when something changed (provider_cancelled, provider_cancel_failed or provider_status). Returns {changed, status, provider_status}. Unknown job or a job not cancelled: P0001.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_list_remote_cancels(text, uuid, integer)',
        'public.func_record_remote_cancel(uuid, text, text, jsonb, text)'
    ]::regprocedure[]);
