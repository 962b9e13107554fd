-- sql/functions/jobs/settle.sql
-- The end of a claim: complete, fail (retry with backoff or give up), release, and the
-- lease extension a worker's heartbeat makes. Each is fenced by the claim's lease token.
-- Locks as described in jobs/claim.sql (a job's rows: request -> job_queue -> jobs;
-- counters in (scope_type, scope_id) order).

-- The one path of complete, fail and release: the current lease token or nothing.
CREATE OR REPLACE FUNCTION hub_internal.func_job_settle(
    p_job_id uuid, p_token uuid, p_action text, p_result jsonb, p_error text,
    p_retryable boolean, p_reason text
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_entry text;       -- the queue entry's new status (scheduled: a retry in backoff)
    v_to text;          -- the job's new status
    v_event text;
    v_attempt integer;  -- the attempt this lease ran (before a release gives it back)
    v_worker text;
    v_user text;
    v_org text;
    v_provider text;
    v_run_after timestamptz;
    v_job_status text;
    v_queue_status text;
    -- 0..10 % jitter so that jobs failing together do not all come back in one instant
    v_jitter double precision := 1 + random() / 10;
BEGIN
    IF p_job_id IS NULL THEN
        RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_token IS NULL THEN
        RAISE EXCEPTION 'lease_token is required: pass the token func_claim_jobs returned'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(x'6a6f62736c6f7473'::bigint);
    -- The fence and the change in one statement: only the current token of a running
    -- entry matches (the row lock is taken here, queue entry before job as everywhere).
    -- A retry waits out its backoff, 10 s x 2^(attempt-1) (at most 1 h), as scheduled.
    UPDATE public.job_queue q
       SET status = CASE WHEN p_action = 'complete' THEN 'completed'
                         WHEN p_action = 'release' THEN 'queued'
                         WHEN p_retryable AND q.attempt < q.max_attempts THEN 'scheduled'
                         ELSE 'failed' END,
           attempt = CASE WHEN p_action = 'release' THEN q.attempt - 1 ELSE q.attempt END,
           run_after = CASE WHEN p_action = 'fail' AND p_retryable AND q.attempt < q.max_attempts
                            THEN now() + make_interval(secs => least(10 * power(2, q.attempt - 1), 3600) * v_jitter)
                            ELSE now() END,
           lease_token = NULL, lease_expires_at = NULL, updated_at = now()
     WHERE q.job_id = p_job_id AND q.status = 'running' AND q.lease_token = p_token
    RETURNING q.status, q.run_after, q.worker_id, q.user_id, q.organization_id, q.provider,
              CASE WHEN p_action = 'release' THEN q.attempt + 1 ELSE q.attempt END
         INTO v_entry, v_run_after, v_worker, v_user, v_org, v_provider, v_attempt;
    IF NOT FOUND THEN
        SELECT q.status, j.status INTO v_queue_status, v_job_status
          FROM public.job_queue q JOIN public.jobs j USING (job_id) WHERE q.job_id = p_job_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown job %', p_job_id USING ERRCODE = 'P0001';
        END IF;
        RETURN jsonb_build_object(
            'accepted', false, 'status', v_job_status,
            'reason', CASE WHEN v_queue_status = 'running'
                           THEN 'stale lease token: the job was claimed again after this lease expired or was released'
                           ELSE format('stale lease token: the job is %s, no longer running under this lease', v_job_status) END);
    END IF;
    v_to := CASE v_entry WHEN 'scheduled' THEN 'queued' ELSE v_entry END;
    v_event := CASE WHEN p_action = 'complete' THEN 'completed' WHEN p_action = 'release' THEN 'released'
                    WHEN v_entry = 'scheduled' THEN 'retry_scheduled' ELSE 'failed' END;

    WITH job AS (
        UPDATE public.jobs
           SET status = v_to,
               attempts = CASE WHEN p_action = 'release' THEN v_attempt - 1 ELSE v_attempt END,
               result = CASE WHEN p_action = 'complete' THEN p_result ELSE result END,
               error = CASE WHEN p_action = 'fail' THEN p_error ELSE error END,
               finished_at = CASE WHEN v_to IN ('completed', 'failed') THEN now() END,
               updated_at = now()
         WHERE job_id = p_job_id
        RETURNING job_id
    )
    INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
    SELECT job.job_id, v_event, 'running', v_to, v_worker,
           jsonb_strip_nulls(jsonb_build_object(
               'attempt', v_attempt, 'error', p_error, 'reason', p_reason,
               'retryable', CASE WHEN p_action = 'fail' THEN p_retryable END,
               'run_after', CASE WHEN v_event = 'retry_scheduled' THEN v_run_after END))
      FROM job;
    -- Counters last in the lock order; with no limit anywhere there is nothing to free
    -- (checked here: the call alone costs a completion more than the check).
    IF EXISTS (SELECT 1 FROM public.concurrency_limits) THEN
        PERFORM hub_internal.func_job_free_slots(ARRAY[v_user], ARRAY[v_org]);
    END IF;
    -- NOTIFY only when the job is claimable again at once (a release): every notifying
    -- commit takes one cluster-wide lock until its WAL is flushed, so notifying
    -- completions would serialise them all. A freed slot is found by the workers' next
    -- poll; a retry is due at run_after, which the claims report as next_run_after.
    IF v_entry = 'queued' THEN
        PERFORM pg_notify('hub_jobs', v_provider);
    END IF;
    RETURN jsonb_build_object('accepted', true, 'status', v_to, 'reason', NULL,
                              'attempt', v_attempt,
                              'run_after', CASE WHEN v_to = 'queued' THEN v_run_after END);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_settle(uuid, uuid, text, jsonb, text, boolean, text) IS
    'Internal: the shared body of func_complete_job, func_fail_job and func_release_job.';

CREATE OR REPLACE FUNCTION public.func_complete_job(job_id uuid, lease_token uuid, result jsonb DEFAULT '{}'::jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF pg_column_size(result) > 1048576 THEN
        RAISE EXCEPTION 'result is % bytes; at most 1048576 (1 MiB) are accepted: store large outputs elsewhere and return their location',
                        pg_column_size(result) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN hub_internal.func_job_settle(job_id, lease_token, 'complete', coalesce(result, '{}'::jsonb), NULL, NULL, NULL);
END;
$$;
COMMENT ON FUNCTION public.func_complete_job(uuid, uuid, jsonb) IS
    'Marks a running job completed with its result (at most 1 MiB), if lease_token is its current lease, even after lease_expires_at as long as nobody has requeued the job (the work was done and nobody else holds it) (else {accepted: false, status, reason} and nothing changes: a worker wrongly declared dead cannot overwrite the job). Frees its slot; one completed event. Returns {accepted, status, reason, attempt}. Unknown job: raises P0001.';

-- Many completions in one call and one commit (a worker running many short jobs reports
-- them together, as pgqueuer batches its acknowledgements): the body of
-- func_complete_jobs_and_claim (jobs/claim.sql) claiming nothing.
CREATE OR REPLACE FUNCTION public.func_complete_jobs(jobs jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN public.func_complete_jobs_and_claim(jobs, NULL, 0);
END;
$$;
COMMENT ON FUNCTION public.func_complete_jobs(jsonb) IS
    'Completes up to 1000 jobs in one transaction: [{job_id, lease_token, result}], each fenced by its token exactly as func_complete_job (a stale token is refused for that job only). Returns {results: [{job_id, accepted, status, reason, attempt}]} in the order given.';

CREATE OR REPLACE FUNCTION public.func_fail_job(job_id uuid, lease_token uuid, error text, retryable boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF length(error) > 65536 THEN
        RAISE EXCEPTION 'error is % characters; at most 65536 are accepted', length(error)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN hub_internal.func_job_settle(job_id, lease_token, 'fail', NULL, coalesce(error, 'failed'), coalesce(retryable, true), NULL);
END;
$$;
COMMENT ON FUNCTION public.func_fail_job(uuid, uuid, text, boolean) IS
    'Records a failed attempt under the current lease (error: at most 65536 characters): retryable and attempts left -> queued again after a backoff of 10 s x 2^(attempt-1) (max 1 h, +0..10 % jitter; event retry_scheduled; the entry waits as scheduled until run_after, which claims report as next_run_after); otherwise failed (event failed). Frees the slot. Returns {accepted, status, reason, attempt, run_after}; a stale token gets accepted=false and changes nothing.';

CREATE OR REPLACE FUNCTION public.func_release_job(job_id uuid, lease_token uuid, reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is % characters; at most 1000 are accepted', length(reason)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN hub_internal.func_job_settle(job_id, lease_token, 'release', NULL, NULL, NULL, coalesce(reason, 'released'));
END;
$$;
COMMENT ON FUNCTION public.func_release_job(uuid, uuid, text) IS
    'Gives a running job back to the queue without using an attempt (e.g. the worker got SIGTERM): queued at once, NOTIFY hub_jobs, slot freed, event released. Returns {accepted, status, reason, attempt}; a stale token gets accepted=false.';

CREATE OR REPLACE FUNCTION public.func_extend_job_leases(
    worker_id text,
    lease_seconds integer DEFAULT 20,
    job_ids jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_worker text := func_extend_job_leases.worker_id;
    v_lease integer := func_extend_job_leases.lease_seconds;
    v_held uuid[];
    v_extended uuid[];
BEGIN
    IF v_worker IS NULL OR btrim(v_worker) = '' OR length(v_worker) > 255 THEN
        RAISE EXCEPTION 'worker_id must be a non-blank text of at most 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_lease IS NULL OR v_lease NOT BETWEEN 1 AND 86400 THEN
        RAISE EXCEPTION 'lease_seconds must be between 1 and 86400, got %', coalesce(v_lease::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF job_ids IS NOT NULL AND jsonb_typeof(job_ids) <> 'null' THEN
        IF jsonb_typeof(job_ids) <> 'array' OR jsonb_path_exists(job_ids, 'strict $[*] ? (@.type() != "string")') THEN
            RAISE EXCEPTION 'job_ids must be null or a JSON array of job id strings'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        BEGIN
            SELECT coalesce(array_agg(t::uuid), '{}') INTO v_held FROM jsonb_array_elements_text(job_ids) AS t;
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'job_ids must hold UUIDs, got %', job_ids USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
    -- A lease that expired but was not yet requeued is still this worker's: renewing it
    -- is safe (its token is unchanged; a requeue would have changed the row first).
    WITH renewed AS (
        UPDATE public.job_queue q
           SET lease_expires_at = now() + make_interval(secs => v_lease), updated_at = now()
         WHERE q.status = 'running' AND q.worker_id = v_worker AND q.lease_expires_at IS NOT NULL
           AND (v_held IS NULL OR q.job_id = ANY (v_held))
        RETURNING q.job_id
    )
    SELECT coalesce(array_agg(r.job_id ORDER BY r.job_id), '{}') INTO v_extended FROM renewed r;
    RETURN jsonb_build_object(
        'extended', cardinality(v_extended),
        'job_ids', to_jsonb(v_extended),
        'lost', CASE WHEN v_held IS NULL THEN '[]'::jsonb ELSE
                    (SELECT coalesce(jsonb_agg(h ORDER BY h), '[]'::jsonb)
                       FROM unnest(v_held) AS h WHERE h <> ALL (v_extended)) END,
        'lease_expires_at', now() + make_interval(secs => v_lease));
END;
$$;
COMMENT ON FUNCTION public.func_extend_job_leases(text, integer, jsonb) IS
    'A worker''s lease renewal, called with every heartbeat: running jobs of worker_id (only those in job_ids when given) get lease_expires_at = now() + lease_seconds. Returns {extended, job_ids, lost, lease_expires_at}; lost lists the given job_ids that are no longer this worker''s (cancelled, requeued after their lease expired, finished): the worker should stop them. Writes no event (not a state change).';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_job_settle(uuid, uuid, text, jsonb, text, boolean, text)',
        'public.func_complete_job(uuid, uuid, jsonb)',
        'public.func_complete_jobs(jsonb)',
        'public.func_fail_job(uuid, uuid, text, boolean)',
        'public.func_release_job(uuid, uuid, text)',
        'public.func_extend_job_leases(text, integer, jsonb)'
    ]::regprocedure[]);
