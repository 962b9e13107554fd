-- 0010_job_queue_functions.sql
-- Claim, lease extension, complete / fail / release.
--
-- Lock order (every job function follows it, so no two of them deadlock):
--   approval_requests row -> job_queue row(s) -> concurrency_limits rows in
--   (scope_type, scope_id) order -> jobs rows.
-- A claim takes its job_queue rows with SKIP LOCKED (never waits for them) and then all
-- the counter rows it may need in ONE sorted pass, so claims of several jobs at once
-- (batches) cannot deadlock with each other or with completions.
-- Every function that changes a running count holds the transaction advisory lock
-- JOB_SLOTS (0x6a6f62736c6f7473, 'jobslots') in SHARE mode; func_set_concurrency_limit
-- takes it exclusively while it creates a counter, so a new counter starts exact.
-- Nothing here keeps session state: it all works through transaction-mode poolers.
-- Idempotent: safe to run again in the SQL editor or with psql -v ON_ERROR_STOP=1 -f.

-- Gives back one slot per element (p_users[i], p_orgs[i]: the job's user and organisation)
-- in every limited scope, locking the counters in the fixed order. Returns true when a
-- limited scope changed (a job waiting for that slot may now run: worth a NOTIFY).
CREATE OR REPLACE FUNCTION public.func_job_free_slots(p_users text[], p_orgs text[])
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_changed integer;
BEGIN
    -- No limit at all (the common case): nothing to count. A limit cannot appear while
    -- we hold JOB_SLOTS in share mode, so this check cannot race with one being set.
    IF coalesce(cardinality(p_users), 0) = 0 OR NOT EXISTS (SELECT 1 FROM public.concurrency_limits) THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM public.concurrency_limits c
      WHERE c.scope_type = 'global'
         OR (c.scope_type = 'organization' AND c.scope_id = ANY (p_orgs))
         OR (c.scope_type = 'user' AND c.scope_id = ANY (p_users))
      ORDER BY c.scope_type, c.scope_id
      FOR UPDATE;
    WITH freed AS (
        SELECT 'global'::text AS scope_type, ''::text AS scope_id, count(*)::integer AS n
          FROM unnest(p_users)
        UNION ALL
        SELECT 'organization', o, count(*)::integer FROM unnest(p_orgs) AS o GROUP BY o
        UNION ALL
        SELECT 'user', u, count(*)::integer FROM unnest(p_users) AS u GROUP BY u
    )
    UPDATE public.concurrency_limits c
       SET running = c.running - f.n, updated_at = now()
      FROM freed f
     WHERE c.scope_type = f.scope_type AND c.scope_id = f.scope_id;
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    RETURN v_changed > 0;
END;
$$;
COMMENT ON FUNCTION public.func_job_free_slots(text[], text[]) IS
    'Internal: returns one running slot per (user, organisation) pair to the global, organisation and user counters that exist, locking them in (scope_type, scope_id) order. Callers hold the JOB_SLOTS advisory lock in share mode. Returns true when a limited scope changed.';

-- Puts running jobs that lost their worker (lease expired, worker dead) back in the
-- queue, or fails them when that was their last attempt. The caller has locked their
-- job_queue rows and frees their slots. One event each.
CREATE OR REPLACE FUNCTION public.func_job_requeue_lost(p_job_ids uuid[], p_event text, p_reason text)
RETURNS TABLE (job_id uuid, user_id text, organization_id text, provider text, requeued boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH lost AS (
        SELECT q.job_id, q.worker_id AS old_worker, q.attempt, q.lease_expires_at AS old_expiry,
               q.attempt < q.max_attempts AS again
          FROM public.job_queue q
         WHERE q.job_id = ANY (p_job_ids) AND q.status = 'running'
    ), q AS (
        UPDATE public.job_queue q
           SET status = CASE WHEN l.again THEN 'queued' ELSE 'failed' END,
               run_after = now(), worker_id = NULL, lease_token = NULL,
               lease_expires_at = NULL, updated_at = now()
          FROM lost l
         WHERE q.job_id = l.job_id
        RETURNING q.job_id, q.user_id, q.organization_id, q.provider, l.again
    ), j AS (
        UPDATE public.jobs j
           SET status = CASE WHEN l.again THEN 'queued' ELSE 'failed' END,
               error = CASE WHEN l.again THEN j.error
                            ELSE format('%s on the last attempt (%s of %s)', p_reason, l.attempt, j.max_attempts) END,
               finished_at = CASE WHEN l.again THEN NULL ELSE now() END,
               updated_at = now()
          FROM lost l
         WHERE j.job_id = l.job_id
        RETURNING j.job_id
    ), ev AS (
        INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
        SELECT l.job_id, p_event, 'running', CASE WHEN l.again THEN 'queued' ELSE 'failed' END,
               l.old_worker,
               jsonb_build_object('reason', p_reason, 'attempt', l.attempt,
                                  'lease_expires_at', l.old_expiry)
          FROM lost l
    )
    SELECT q.job_id, q.user_id, q.organization_id, q.provider, q.again FROM q;
END;
$$;
COMMENT ON FUNCTION public.func_job_requeue_lost(uuid[], text, text) IS
    'Internal: running jobs whose worker is gone go back to queued (claimable at once, the attempt stays used) or to failed on their last attempt; one job_events row each (p_event). The caller locked the job_queue rows and frees the slots.';

CREATE OR REPLACE FUNCTION public.func_claim_jobs(
    worker_id text,
    max_jobs integer DEFAULT 1,
    lease_seconds integer DEFAULT 30,
    provider text DEFAULT 'local',
    job_types jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_worker text := func_claim_jobs.worker_id;
    v_max integer := func_claim_jobs.max_jobs;
    v_lease integer := func_claim_jobs.lease_seconds;
    v_provider text := func_claim_jobs.provider;
    v_types text[];
    v_full text[];
    v_limited boolean;
    -- expired leases found on the way (requeued here, then candidates like any other)
    e_ids uuid[];
    -- candidates in claim order, with the scopes they count against
    c_ids uuid[] := '{}';
    c_users text[] := '{}';
    c_orgs text[] := '{}';
    -- the locked counters: key 'scope_type:scope_id', running now, running before, max
    k_keys text[];
    k_running integer[];
    k_before integer[];
    k_max integer[];
    v_accept uuid[] := '{}';
    v_row record;
    v_pos integer[];
    v_ok boolean;
    v_jobs jsonb;
BEGIN
    IF v_worker IS NULL OR btrim(v_worker) = '' OR length(v_worker) > 255 THEN
        RAISE EXCEPTION 'worker_id must be a non-blank text of at most 255 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_max IS NULL OR v_max NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_jobs must be between 1 and 1000, got %', coalesce(v_max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_lease IS NULL OR v_lease NOT BETWEEN 1 AND 86400 THEN
        RAISE EXCEPTION 'lease_seconds must be between 1 and 86400, got %', coalesce(v_lease::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_provider IS NULL OR btrim(v_provider) = '' THEN
        RAISE EXCEPTION 'provider must be a non-blank text such as ''local'''
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF job_types IS NOT NULL AND jsonb_typeof(job_types) <> 'null' THEN
        IF jsonb_typeof(job_types) <> 'array'
           OR jsonb_path_exists(job_types, 'strict $[*] ? (@.type() != "string")') THEN
            RAISE EXCEPTION 'job_types must be null (any type) or a JSON array of job type strings'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT coalesce(array_agg(t), '{}') INTO v_types FROM jsonb_array_elements_text(job_types) AS t;
    END IF;

    PERFORM pg_advisory_xact_lock_shared(x'6a6f62736c6f7473'::bigint);

    -- 1. Leases that expired (their worker died or hung): requeued below, in this call.
    SELECT array_agg(x.job_id) INTO e_ids
      FROM (SELECT q.job_id FROM public.job_queue q
             WHERE q.status = 'running' AND q.provider = v_provider
               AND q.lease_expires_at < now()
             ORDER BY q.lease_expires_at
             LIMIT 100
             FOR UPDATE SKIP LOCKED) x;

    -- 2. Candidates. The saturated scopes read here (unlocked) only avoid walking jobs
    -- that surely cannot run; the decision is made under the counters' locks below.
    SELECT count(*) > 0,
           coalesce(array_agg(l.scope_type || ':' || l.scope_id) FILTER (WHERE l.running >= l.max_running), '{}')
      INTO v_limited, v_full
      FROM public.concurrency_limits l;
    IF e_ids IS NULL AND 'global:' = ANY (v_full) THEN
        RETURN jsonb_build_object('jobs', '[]'::jsonb);
    END IF;
    -- Expired ones first (they have waited longest), then the queue in claim order.
    SELECT coalesce(array_agg(x.job_id ORDER BY x.first DESC, x.claim_key), '{}'),
           coalesce(array_agg(x.user_id ORDER BY x.first DESC, x.claim_key), '{}'),
           coalesce(array_agg(x.organization_id ORDER BY x.first DESC, x.claim_key), '{}')
      INTO c_ids, c_users, c_orgs
      FROM (SELECT q.job_id, q.user_id, q.organization_id, q.claim_key, true AS first
              FROM public.job_queue q WHERE q.job_id = ANY (e_ids)
              AND (v_types IS NULL OR q.job_type = ANY (v_types))
            UNION ALL
            SELECT y.job_id, y.user_id, y.organization_id, y.claim_key, false
              FROM (SELECT q.job_id, q.user_id, q.organization_id, q.claim_key
                      FROM public.job_queue q
                     WHERE q.status = 'queued' AND q.provider = v_provider
                       AND q.run_after <= now()
                       AND (v_types IS NULL OR q.job_type = ANY (v_types))
                       AND NOT ('organization:' || q.organization_id = ANY (v_full))
                       AND NOT ('user:' || q.user_id = ANY (v_full))
                     ORDER BY q.claim_key
                     LIMIT v_max * 2 + 8
                     FOR UPDATE SKIP LOCKED) y) x;
    IF e_ids IS NULL AND cardinality(c_ids) = 0 THEN
        RETURN jsonb_build_object('jobs', '[]'::jsonb);
    END IF;

    -- 3. Every counter any of them needs, locked in one pass in the fixed order (none
    -- when no limit exists: a limit cannot appear while JOB_SLOTS is held in share mode).
    k_keys := '{}'; k_running := '{}'; k_max := '{}';
    IF v_limited THEN
        SELECT coalesce(array_agg(l.scope_type || ':' || l.scope_id ORDER BY l.scope_type, l.scope_id), '{}'),
               coalesce(array_agg(l.running ORDER BY l.scope_type, l.scope_id), '{}'),
               coalesce(array_agg(l.max_running ORDER BY l.scope_type, l.scope_id), '{}')
          INTO k_keys, k_running, k_max
          FROM (SELECT c.scope_type, c.scope_id, c.running, c.max_running
                  FROM public.concurrency_limits c
                 WHERE c.scope_type = 'global'
                    OR (c.scope_type = 'organization' AND c.scope_id = ANY (
                            c_orgs || ARRAY(SELECT q.organization_id FROM public.job_queue q WHERE q.job_id = ANY (e_ids))))
                    OR (c.scope_type = 'user' AND c.scope_id = ANY (
                            c_users || ARRAY(SELECT q.user_id FROM public.job_queue q WHERE q.job_id = ANY (e_ids))))
                 ORDER BY c.scope_type, c.scope_id
                 FOR UPDATE) l;
    END IF;
    k_before := k_running;

    -- 4. Expired leases give their slot back and are requeued (or failed when out of
    -- attempts); the requeued ones stay at the head of the candidates.
    IF e_ids IS NOT NULL THEN
        FOR v_row IN SELECT * FROM public.func_job_requeue_lost(e_ids, 'lease_expired', 'lease expired') LOOP
            v_pos := ARRAY[array_position(k_keys, 'global:'),
                           array_position(k_keys, 'organization:' || v_row.organization_id),
                           array_position(k_keys, 'user:' || v_row.user_id)];
            FOR i IN 1..3 LOOP
                IF v_pos[i] IS NOT NULL THEN
                    k_running[v_pos[i]] := k_running[v_pos[i]] - 1;
                END IF;
            END LOOP;
        END LOOP;
    END IF;

    -- 5. Take candidates in order while every scope they count against has room.
    FOR i IN 1..cardinality(c_ids) LOOP
        EXIT WHEN cardinality(v_accept) >= v_max;
        v_pos := ARRAY[array_position(k_keys, 'global:'),
                       array_position(k_keys, 'organization:' || c_orgs[i]),
                       array_position(k_keys, 'user:' || c_users[i])];
        v_ok := true;
        FOR s IN 1..3 LOOP
            IF v_pos[s] IS NOT NULL AND k_running[v_pos[s]] >= k_max[v_pos[s]] THEN
                v_ok := false;
            END IF;
        END LOOP;
        CONTINUE WHEN NOT v_ok;
        -- an expired job that used its last attempt was failed above, not requeued
        IF e_ids IS NOT NULL THEN
            CONTINUE WHEN c_ids[i] = ANY (e_ids) AND NOT EXISTS (
                SELECT 1 FROM public.job_queue q WHERE q.job_id = c_ids[i] AND q.status = 'queued');
        END IF;
        FOR s IN 1..3 LOOP
            IF v_pos[s] IS NOT NULL THEN
                k_running[v_pos[s]] := k_running[v_pos[s]] + 1;
            END IF;
        END LOOP;
        v_accept := v_accept || c_ids[i];
    END LOOP;

    -- 6. Write the counters back, then the claims, one event each.
    IF v_limited THEN
        UPDATE public.concurrency_limits c
           SET running = k.running, updated_at = now()
          FROM unnest(k_keys, k_running, k_before) AS k(key, running, before)
         WHERE k.running <> k.before
           AND c.scope_type = split_part(k.key, ':', 1)
           AND c.scope_id = substr(k.key, length(split_part(k.key, ':', 1)) + 2);
    END IF;

    WITH claimed AS (
        UPDATE public.job_queue q
           SET status = 'running', attempt = q.attempt + 1, worker_id = v_worker,
               lease_token = gen_random_uuid(),
               lease_expires_at = now() + make_interval(secs => v_lease),
               claimed_at = now(), updated_at = now()
         WHERE q.job_id = ANY (v_accept)
        RETURNING q.job_id, q.attempt, q.lease_token, q.lease_expires_at
    ), j AS (
        UPDATE public.jobs j
           SET status = 'running', attempts = c.attempt,
               started_at = coalesce(j.started_at, now()), updated_at = now()
          FROM claimed c
         WHERE j.job_id = c.job_id
        RETURNING j.job_id, j.job_type, j.provider, j.priority, j.payload, j.user_id, j.organization_id
    ), ev AS (
        INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
        SELECT c.job_id, 'claimed', 'queued', 'running', v_worker,
               jsonb_build_object('attempt', c.attempt, 'lease_expires_at', c.lease_expires_at)
          FROM claimed c
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'job_id', c.job_id, 'lease_token', c.lease_token, 'attempt', c.attempt,
               'job_type', j.job_type, 'provider', j.provider, 'priority', j.priority,
               'payload', j.payload, 'user_id', j.user_id, 'organization_id', j.organization_id,
               'lease_expires_at', c.lease_expires_at)
               ORDER BY array_position(v_accept, c.job_id)), '[]'::jsonb)
      INTO v_jobs
      FROM claimed c JOIN j ON j.job_id = c.job_id;

    RETURN jsonb_build_object('jobs', v_jobs);
END;
$$;
COMMENT ON FUNCTION public.func_claim_jobs(text, integer, integer, text, jsonb) IS
    'Claims up to max_jobs queued jobs of a provider (optionally only the given job_types) for worker_id, highest effective priority first (priority + 1 point per 10 s waited, see job_queue.claim_key), skipping rows other claims hold (FOR UPDATE SKIP LOCKED) and jobs whose global, organisation or user limit is full (counters locked and checked in one ordered pass, so limits hold under any concurrency). Jobs whose lease expired are requeued (or failed on their last attempt) by this same call and can be claimed by it. Returns {jobs: [{job_id, lease_token, attempt, job_type, provider, priority, payload, user_id, organization_id, lease_expires_at}]}. Raises invalid_parameter_value for a blank worker_id, max_jobs outside 1..1000, lease_seconds outside 1..86400 or malformed job_types.';

CREATE OR REPLACE FUNCTION public.func_extend_job_leases(
    worker_id text,
    lease_seconds integer DEFAULT 30,
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
    IF v_worker IS NULL OR btrim(v_worker) = '' THEN
        RAISE EXCEPTION 'worker_id must be a non-blank text' USING ERRCODE = 'invalid_parameter_value';
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

-- The one path of complete, fail and release: the current lease token or nothing.
CREATE OR REPLACE FUNCTION public.func_job_settle(
    p_job_id uuid, p_token uuid, p_action text, p_result jsonb, p_error text,
    p_retryable boolean, p_reason text
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    q public.job_queue%ROWTYPE;
    v_job_status text;
    v_to text;
    v_event text;
    v_run_after timestamptz := now();
    v_backoff numeric;
    v_freed boolean;
BEGIN
    IF p_job_id IS NULL THEN
        RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_token IS NULL THEN
        RAISE EXCEPTION 'lease_token is required: pass the token func_claim_jobs returned'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(x'6a6f62736c6f7473'::bigint);
    SELECT * INTO q FROM public.job_queue WHERE job_id = p_job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job %', p_job_id USING ERRCODE = 'P0001';
    END IF;
    IF q.status <> 'running' OR q.lease_token IS DISTINCT FROM p_token THEN
        SELECT status INTO v_job_status FROM public.jobs WHERE job_id = p_job_id;
        RETURN jsonb_build_object(
            'accepted', false, 'status', v_job_status,
            'reason', CASE WHEN q.status = 'running'
                           THEN 'stale lease token: the job was claimed again after this lease expired or was released'
                           ELSE format('stale lease token: the job is %s, no longer running under this lease', v_job_status) END);
    END IF;

    IF p_action = 'complete' THEN
        v_to := 'completed'; v_event := 'completed';
    ELSIF p_action = 'release' THEN
        v_to := 'queued'; v_event := 'released';
    ELSIF p_retryable AND q.attempt < q.max_attempts THEN
        -- Exponential backoff: 10 s x 2^(attempt-1), at most 1 h, plus up to 10 % jitter
        -- so that jobs failing together do not all come back in the same instant.
        v_backoff := least(10 * power(2, q.attempt - 1), 3600) * (1 + random() / 10);
        v_run_after := now() + make_interval(secs => v_backoff);
        v_to := 'queued'; v_event := 'retry_scheduled';
    ELSE
        v_to := 'failed'; v_event := 'failed';
    END IF;

    UPDATE public.job_queue
       SET status = v_to,
           attempt = CASE WHEN p_action = 'release' THEN attempt - 1 ELSE attempt END,
           run_after = v_run_after, lease_token = NULL, lease_expires_at = NULL,
           updated_at = now()
     WHERE job_id = p_job_id;
    v_freed := public.func_job_free_slots(ARRAY[q.user_id], ARRAY[q.organization_id]);
    UPDATE public.jobs
       SET status = v_to,
           attempts = CASE WHEN p_action = 'release' THEN q.attempt - 1 ELSE q.attempt END,
           result = CASE WHEN p_action = 'complete' THEN p_result ELSE result END,
           error = CASE WHEN p_action = 'fail' THEN p_error ELSE error END,
           finished_at = CASE WHEN v_to IN ('completed', 'failed') THEN now() END,
           updated_at = now()
     WHERE job_id = p_job_id;
    INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
    VALUES (p_job_id, v_event, 'running', v_to, q.worker_id,
            jsonb_strip_nulls(jsonb_build_object(
                'attempt', q.attempt, 'error', p_error, 'reason', p_reason,
                'retryable', CASE WHEN p_action = 'fail' THEN p_retryable END,
                'run_after', CASE WHEN v_event = 'retry_scheduled' THEN v_run_after END)));
    IF v_to = 'queued' OR v_freed THEN
        PERFORM pg_notify('hub_jobs', q.provider);
    END IF;
    RETURN jsonb_build_object('accepted', true, 'status', v_to, 'reason', NULL,
                              'attempt', q.attempt,
                              'run_after', CASE WHEN v_to = 'queued' THEN v_run_after END);
END;
$$;
COMMENT ON FUNCTION public.func_job_settle(uuid, uuid, text, jsonb, text, boolean, text) IS
    'Internal: the shared body of func_complete_job, func_fail_job and func_release_job.';

CREATE OR REPLACE FUNCTION public.func_complete_job(job_id uuid, lease_token uuid, result jsonb DEFAULT '{}'::jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN public.func_job_settle(job_id, lease_token, 'complete', coalesce(result, '{}'::jsonb), NULL, NULL, NULL);
END;
$$;
COMMENT ON FUNCTION public.func_complete_job(uuid, uuid, jsonb) IS
    'Marks a running job completed with its result, if lease_token is its current lease (else {accepted: false, status, reason} and nothing changes: a worker wrongly declared dead cannot overwrite the job). Frees its slot; one completed event. Returns {accepted, status, reason, attempt}. Unknown job: raises P0001.';

CREATE OR REPLACE FUNCTION public.func_fail_job(job_id uuid, lease_token uuid, error text, retryable boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN public.func_job_settle(job_id, lease_token, 'fail', NULL, coalesce(error, 'failed'), coalesce(retryable, true), NULL);
END;
$$;
COMMENT ON FUNCTION public.func_fail_job(uuid, uuid, text, boolean) IS
    'Records a failed attempt under the current lease: retryable and attempts left -> queued again after a backoff of 10 s x 2^(attempt-1) (max 1 h, +0..10 % jitter; event retry_scheduled, NOTIFY hub_jobs); otherwise failed (event failed). Frees the slot. Returns {accepted, status, reason, attempt, run_after}; a stale token gets accepted=false and changes nothing.';

CREATE OR REPLACE FUNCTION public.func_release_job(job_id uuid, lease_token uuid, reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN public.func_job_settle(job_id, lease_token, 'release', NULL, NULL, NULL, coalesce(reason, 'released'));
END;
$$;
COMMENT ON FUNCTION public.func_release_job(uuid, uuid, text) IS
    'Gives a running job back to the queue without using an attempt (e.g. the worker got SIGTERM): queued at once, NOTIFY hub_jobs, slot freed, event released. Returns {accepted, status, reason, attempt}; a stale token gets accepted=false.';

SELECT public.func_hub_secure(p_functions => ARRAY[
    'public.func_job_free_slots(text[], text[])',
    'public.func_job_requeue_lost(uuid[], text, text)',
    'public.func_claim_jobs(text, integer, integer, text, jsonb)',
    'public.func_extend_job_leases(text, integer, jsonb)',
    'public.func_job_settle(uuid, uuid, text, jsonb, text, boolean, text)',
    'public.func_complete_job(uuid, uuid, jsonb)',
    'public.func_fail_job(uuid, uuid, text, boolean)',
    'public.func_release_job(uuid, uuid, text)'
]::regprocedure[]);
