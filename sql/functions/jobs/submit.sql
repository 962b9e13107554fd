-- sql/functions/jobs/submit.sql
-- Submitting jobs: one (func_submit_job), many in one transaction (func_submit_jobs), and
-- a re-run of a failed or cancelled job (func_rerun_job). All three go through
-- hub_internal.func_job_submit, so the rules (input checks, approval rules, scheduling)
-- are written once. Every text and JSON input has a size limit with a one-line error.

CREATE OR REPLACE FUNCTION hub_internal.func_job_submit(job jsonb, p_rerun_of uuid)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_keys constant text[] := ARRAY['user_id', 'job_type', 'provider', 'priority', 'payload',
                                    'estimated_cost', 'max_attempts', 'idempotency_key',
                                    'run_at', 'run_in_seconds', 'timeout_seconds'];
    v_run_after timestamptz := now();
    v_timeout integer;
    v_entry text;
    v_unknown text;
    v_user text;
    v_org text;
    v_type text;
    v_provider text;
    v_priority integer;
    v_payload jsonb;
    v_cost numeric;
    v_attempts integer;
    v_key text;
    v_job_id uuid;
    v_rules text[];
    v_ttl integer;
    v_self boolean;
    v_request uuid;
    v_expires timestamptz;
    v_status text;
BEGIN
    IF job IS NULL OR jsonb_typeof(job) <> 'object' THEN
        RAISE EXCEPTION 'job must be a JSON object with user_id, job_type and payload, got %',
                        coalesce('a JSON ' || jsonb_typeof(job), 'SQL NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_column_size(job) > 1048576 THEN
        RAISE EXCEPTION 'job is % bytes; at most 1048576 (1 MiB) are accepted: pass large inputs by reference',
                        pg_column_size(job) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown FROM jsonb_object_keys(job) AS k WHERE k <> ALL (v_keys);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown job key(s): %; accepted: %', v_unknown, array_to_string(v_keys, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(job -> 'user_id') IS DISTINCT FROM 'string' OR btrim(job ->> 'user_id') = ''
       OR length(job ->> 'user_id') > 255 THEN
        RAISE EXCEPTION 'user_id is required (a string of at most 255 characters naming a user registered with func_upsert_hub_user)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_user := job ->> 'user_id';
    SELECT organization_id INTO v_org FROM public.hub_users WHERE user_id = v_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user %; register it first with func_upsert_hub_user(user_id, organization_id)',
                        quote_literal(left(v_user, 100)) USING ERRCODE = 'P0001';
    END IF;
    IF jsonb_typeof(job -> 'job_type') IS DISTINCT FROM 'string' OR btrim(job ->> 'job_type') = ''
       OR length(job ->> 'job_type') > 255 THEN
        RAISE EXCEPTION 'job_type is required: a non-blank string of at most 255 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_type := job ->> 'job_type';
    IF job ? 'provider' AND (jsonb_typeof(job -> 'provider') <> 'string' OR btrim(job ->> 'provider') = ''
                             OR length(job ->> 'provider') > 255) THEN
        RAISE EXCEPTION 'provider must be a non-blank string of at most 255 characters (default ''local'')' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_provider := coalesce(job ->> 'provider', 'local');
    IF job ? 'priority' AND jsonb_typeof(job -> 'priority') <> 'null' AND NOT (CASE WHEN jsonb_typeof(job -> 'priority') = 'number' THEN
           (job ->> 'priority')::numeric = trunc((job ->> 'priority')::numeric)
           AND (job ->> 'priority')::numeric BETWEEN 0 AND 1000 ELSE false END) THEN
        RAISE EXCEPTION 'priority must be an integer from 0 to 1000 (higher runs first; default 100), got %',
                        job -> 'priority' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_priority := coalesce((job ->> 'priority')::numeric::integer, 100);
    v_payload := coalesce(nullif(job -> 'payload', 'null'::jsonb), '{}'::jsonb);
    IF jsonb_typeof(v_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object, got a JSON %', jsonb_typeof(v_payload)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_provider = 'local' THEN
        IF (v_payload ? 'command') = (v_payload ? 'callable') THEN
            RAISE EXCEPTION 'a local job''s payload needs exactly one of "command" (a shell command string) or "callable" ("module:function")'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_payload ? 'command' AND (jsonb_typeof(v_payload -> 'command') <> 'string'
                                      OR btrim(v_payload ->> 'command') = '') THEN
            RAISE EXCEPTION 'payload.command must be a non-empty shell command string, got %', v_payload -> 'command'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_payload ? 'callable' AND (jsonb_typeof(v_payload -> 'callable') <> 'string'
               OR (v_payload ->> 'callable') !~ '^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$') THEN
            RAISE EXCEPTION 'payload.callable must name a Python function as "module:function" (e.g. "mypkg.tasks:train"), got %',
                            v_payload -> 'callable' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_payload ? 'kwargs' AND jsonb_typeof(v_payload -> 'kwargs') <> 'object' THEN
            RAISE EXCEPTION 'payload.kwargs must be a JSON object of keyword arguments, got a JSON %',
                            jsonb_typeof(v_payload -> 'kwargs') USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    IF job ? 'estimated_cost' AND jsonb_typeof(job -> 'estimated_cost') <> 'null' AND NOT (CASE WHEN jsonb_typeof(job -> 'estimated_cost') = 'number'
                THEN (job ->> 'estimated_cost')::numeric >= 0 ELSE false END) THEN
        RAISE EXCEPTION 'estimated_cost must be a number >= 0 or null, got %', job -> 'estimated_cost'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_cost := (job ->> 'estimated_cost')::numeric;
    IF job ? 'max_attempts' AND jsonb_typeof(job -> 'max_attempts') <> 'null' AND NOT (CASE WHEN jsonb_typeof(job -> 'max_attempts') = 'number' THEN
           (job ->> 'max_attempts')::numeric = trunc((job ->> 'max_attempts')::numeric)
           AND (job ->> 'max_attempts')::numeric BETWEEN 1 AND 100 ELSE false END) THEN
        RAISE EXCEPTION 'max_attempts must be an integer from 1 to 100 (default 3), got %', job -> 'max_attempts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_attempts := coalesce((job ->> 'max_attempts')::numeric::integer, 3);
    IF job ? 'idempotency_key' AND jsonb_typeof(job -> 'idempotency_key') <> 'null' AND (
           jsonb_typeof(job -> 'idempotency_key') <> 'string' OR length(job ->> 'idempotency_key') NOT BETWEEN 1 AND 255) THEN
        RAISE EXCEPTION 'idempotency_key must be a string of 1 to 255 characters or null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_key := job ->> 'idempotency_key';
    IF job ? 'timeout_seconds' AND jsonb_typeof(job -> 'timeout_seconds') <> 'null' AND NOT (CASE WHEN jsonb_typeof(job -> 'timeout_seconds') = 'number' THEN
           (job ->> 'timeout_seconds')::numeric = trunc((job ->> 'timeout_seconds')::numeric)
           AND (job ->> 'timeout_seconds')::numeric BETWEEN 1 AND 604800 ELSE false END) THEN
        RAISE EXCEPTION 'timeout_seconds must be a whole number of seconds from 1 to 604800 (7 days) or null, got %',
                        left((job -> 'timeout_seconds')::text, 100) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_timeout := (job ->> 'timeout_seconds')::numeric::integer;
    IF job ? 'run_at' AND job ? 'run_in_seconds' THEN
        RAISE EXCEPTION 'give run_at or run_in_seconds, not both' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF job ? 'run_in_seconds' AND jsonb_typeof(job -> 'run_in_seconds') <> 'null' THEN
        IF jsonb_typeof(job -> 'run_in_seconds') <> 'number'
           OR (job ->> 'run_in_seconds')::numeric NOT BETWEEN 0 AND 31622400 THEN
            RAISE EXCEPTION 'run_in_seconds must be a number of seconds from 0 to 31622400 (366 days), got %',
                            left((job -> 'run_in_seconds')::text, 100) USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_run_after := now() + make_interval(secs => (job ->> 'run_in_seconds')::double precision);
    ELSIF job ? 'run_at' AND jsonb_typeof(job -> 'run_at') <> 'null' THEN
        BEGIN
            IF jsonb_typeof(job -> 'run_at') <> 'string' OR length(job ->> 'run_at') > 64 THEN
                RAISE invalid_datetime_format;
            END IF;
            v_run_after := greatest(now(), (job ->> 'run_at')::timestamptz);
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation THEN
            RAISE EXCEPTION 'run_at must be an ISO 8601 time such as 2026-12-24T18:00:00Z, got %',
                            left((job -> 'run_at')::text, 100) USING ERRCODE = 'invalid_parameter_value';
        END;
        IF v_run_after > now() + interval '366 days' THEN
            RAISE EXCEPTION 'run_at may be at most 366 days ahead, got %', job ->> 'run_at'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    SELECT array_agg(r.name ORDER BY r.name), min(r.approval_ttl_seconds), bool_and(r.allow_self_approval)
      INTO v_rules, v_ttl, v_self
      FROM public.approval_rules r
     WHERE r.enabled
       AND (r.job_type IS NULL OR r.job_type = v_type)
       AND (r.provider IS NULL OR r.provider = v_provider)
       AND (r.min_estimated_cost IS NULL OR v_cost >= r.min_estimated_cost);
    v_status := CASE WHEN v_rules IS NULL THEN 'queued' ELSE 'awaiting_approval' END;

    INSERT INTO public.jobs (user_id, organization_id, job_type, provider, priority, payload,
                             estimated_cost, max_attempts, idempotency_key, status, timeout_seconds, rerun_of)
    VALUES (v_user, v_org, v_type, v_provider, v_priority, v_payload, v_cost, v_attempts, v_key, v_status,
            v_timeout, p_rerun_of)
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING job_id INTO v_job_id;
    IF v_job_id IS NULL THEN
        -- Same user, same idempotency key: the job submitted before, unchanged.
        SELECT j.job_id, j.status, r.request_id, r.expires_at INTO v_job_id, v_status, v_request, v_expires
          FROM public.jobs j LEFT JOIN public.approval_requests r ON r.job_id = j.job_id
         WHERE j.user_id = v_user AND j.idempotency_key = v_key;
        RETURN jsonb_build_object('job_id', v_job_id, 'status', v_status, 'approval_request_id', v_request,
                                  'approval_expires_at', v_expires, 'duplicate', true);
    END IF;

    -- A job for later waits as scheduled (outside the claim's indexes); it ages from run_at.
    v_entry := CASE WHEN v_rules IS NOT NULL THEN 'pending_approval'
                    WHEN v_run_after > now() THEN 'scheduled' ELSE 'queued' END;
    INSERT INTO public.job_queue (job_id, status, provider, job_type, user_id, organization_id,
                                  priority, max_attempts, enqueued_at, claim_key, run_after)
    VALUES (v_job_id, v_entry, v_provider, v_type, v_user, v_org, v_priority, v_attempts,
            now(), v_run_after - make_interval(secs => v_priority * 10), v_run_after);
    IF v_rules IS NOT NULL THEN
        v_expires := now() + make_interval(secs => v_ttl);
        INSERT INTO public.approval_requests (job_id, requested_by, rule_names, allow_self_approval,
                                              status, expires_at)
        VALUES (v_job_id, v_user, v_rules, v_self, 'pending', v_expires)
        RETURNING request_id INTO v_request;
    END IF;
    INSERT INTO public.job_events (job_id, event_type, from_status, to_status, details)
    VALUES (v_job_id, 'submitted', NULL, v_status,
            jsonb_strip_nulls(jsonb_build_object('user_id', v_user, 'priority', v_priority,
                                                 'approval_request_id', v_request, 'rules', to_jsonb(v_rules),
                                                 'run_at', CASE WHEN v_run_after > now() THEN v_run_after END,
                                                 'rerun_of', p_rerun_of)));
    IF v_entry = 'queued' THEN
        PERFORM pg_notify('hub_jobs', v_provider);
    END IF;
    RETURN jsonb_build_object('job_id', v_job_id, 'status', v_status, 'approval_request_id', v_request,
                              'approval_expires_at', v_expires, 'duplicate', false,
                              'run_at', CASE WHEN v_run_after > now() THEN v_run_after END);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_submit(jsonb, uuid) IS
    'Internal: the shared body of func_submit_job, func_submit_jobs and func_rerun_job (p_rerun_of: the job re-run, or null).';

CREATE OR REPLACE FUNCTION public.func_submit_job(job jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN hub_internal.func_job_submit(job, NULL);
END;
$$;
COMMENT ON FUNCTION public.func_submit_job(jsonb) IS
    'Submits a job {user_id, job_type, provider=local, priority=100 (0..1000), payload, estimated_cost, max_attempts=3 (1..100), idempotency_key, run_at (ISO 8601) or run_in_seconds, timeout_seconds (1..604800)}; the whole job at most 1 MiB, texts at most 255 characters. A job with run_at/run_in_seconds in the future waits (jobs.status queued, queue entry scheduled) and ages from then. A local job''s payload needs "command" (non-empty string) or "callable" ("module:function", optional "kwargs" object). When enabled approval rules match, the job awaits approval (request deadline = now + the shortest matching TTL); otherwise it is queued and NOTIFY hub_jobs (payload: provider) is sent at commit (at once, or when scheduled, by no one: claims report next_run_after). Returns {job_id, status, approval_request_id, approval_expires_at, duplicate, run_at}; a repeated (user_id, idempotency_key) returns the earlier job with duplicate=true. Bad input raises invalid_parameter_value, an unknown user P0001; nothing is written then.';


-- Many jobs in one call and one transaction: all are submitted or none (the error names
-- the index of the refused job). A NOTIFY per provider at most (PostgreSQL folds equal
-- notifications of one transaction).
CREATE OR REPLACE FUNCTION public.func_submit_jobs(jobs jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_results jsonb := '[]'::jsonb;
    v_index integer := 0;
    v_job jsonb;
    v_message text;
    v_state text;
BEGIN
    IF jobs IS NULL OR jsonb_typeof(jobs) <> 'array' THEN
        RAISE EXCEPTION 'jobs must be a JSON array of job objects (see func_submit_job), got %',
                        coalesce('a JSON ' || jsonb_typeof(jobs), 'SQL NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(jobs) > 1000 THEN
        RAISE EXCEPTION 'jobs holds % jobs; at most 1000 are accepted per call', jsonb_array_length(jobs)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_column_size(jobs) > 16777216 THEN
        RAISE EXCEPTION 'jobs is % bytes; at most 16777216 (16 MiB) are accepted per call', pg_column_size(jobs)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        FOR v_job IN SELECT value FROM jsonb_array_elements(jobs) LOOP
            v_results := v_results || hub_internal.func_job_submit(v_job, NULL);
            v_index := v_index + 1;
        END LOOP;
    EXCEPTION WHEN invalid_parameter_value OR raise_exception THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
        RAISE EXCEPTION 'jobs[%]: %', v_index, v_message USING ERRCODE = v_state;
    END;
    RETURN jsonb_build_object('submitted', jsonb_array_length(v_results), 'jobs', v_results);
END;
$$;
COMMENT ON FUNCTION public.func_submit_jobs(jsonb) IS
    'Submits up to 1000 jobs (a JSON array of func_submit_job objects, at most 16 MiB) in one transaction: every one or none; a refusal names its index, e.g. "jobs[3]: priority must be ...". Returns {submitted, jobs: [the func_submit_job result of each, in order]}.';

-- A failed or cancelled job again: a new job with the same user, type, provider,
-- priority, payload, attempts and timeout (approval rules apply anew), pointing back.
CREATE OR REPLACE FUNCTION public.func_rerun_job(job_id uuid, requested_by text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    j public.jobs%ROWTYPE;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(requested_by) > 255 THEN
        RAISE EXCEPTION 'requested_by is % characters; at most 255 are accepted', length(requested_by)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO j FROM public.jobs jb WHERE jb.job_id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job %', job_id USING ERRCODE = 'P0001';
    END IF;
    IF j.status NOT IN ('failed', 'cancelled') THEN
        RAISE EXCEPTION 'job % is %; only a failed or cancelled job can be re-run', job_id, j.status
            USING ERRCODE = 'P0001';
    END IF;
    RETURN hub_internal.func_job_submit(jsonb_strip_nulls(jsonb_build_object(
        'user_id', j.user_id, 'job_type', j.job_type, 'provider', j.provider, 'priority', j.priority,
        'payload', j.payload, 'estimated_cost', j.estimated_cost, 'max_attempts', j.max_attempts,
        'timeout_seconds', j.timeout_seconds)), j.job_id)
        || jsonb_build_object('rerun_of', j.job_id, 'requested_by', requested_by);
END;
$$;
COMMENT ON FUNCTION public.func_rerun_job(uuid, text) IS
    'Re-runs a failed or cancelled job as a new job (same user, type, provider, priority, payload, max_attempts, timeout; approval rules apply again; jobs.rerun_of and the submitted event point back). Returns the func_submit_job result plus rerun_of. Any other status: P0001.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_job_submit(jsonb, uuid)',
        'public.func_submit_job(jsonb)',
        'public.func_submit_jobs(jsonb)',
        'public.func_rerun_job(uuid, text)'
    ]::regprocedure[]);
