-- sql/functions/jobs/claim.sql
-- The claim, and the completions a worker reports with it: func_complete_jobs_and_claim
-- is the one body of func_complete_jobs (max_jobs 0), func_claim_jobs (no completions)
-- and the fused call a worker makes, "here are my finished jobs, give me the next ones"
-- (one round trip, one commit). One body rather than the fused call calling the other
-- two: each PL/pgSQL call with its SET clauses, and each statement, has a fixed cost that
-- a job of a few milliseconds pays on every report (bench/job_queue_server.py).
-- The helpers it shares with the other job functions: jobs/queue_internals.sql.
--
-- Locks (no two job functions can deadlock):
--   * a job's rows: approval_requests -> job_queue -> jobs; anyone who touches a jobs
--     row holds its job_queue row first;
--   * counters (concurrency_limits) in (scope_type, scope_id) order: global first.
-- Completions lock their queue entries first, in job id order, so a batch cannot
-- deadlock with a cancel of one of its jobs (which locks the entry, then the counters)
-- while it holds a counter for another; then the counters they free, in the fixed order.
-- A claim takes its job_queue rows with SKIP LOCKED (never waits for them), waits only
-- for the global counter, and takes organisation/user counters with SKIP LOCKED in one
-- sorted pass: nothing new to wait for after the completions, so no deadlock.
-- Every function that changes a running count holds the transaction advisory lock
-- JOB_SLOTS (0x6a6f62736c6f7473, 'jobslots') in SHARE mode; func_set_concurrency_limit
-- takes it exclusively while it creates a counter, so a new counter starts exact.
-- Nothing here keeps session state: it all works through transaction-mode poolers.

CREATE OR REPLACE FUNCTION public.func_complete_jobs_and_claim(
    jobs jsonb,
    worker_id text,
    max_jobs integer DEFAULT 1,
    lease_seconds integer DEFAULT 20,
    provider text DEFAULT 'local',
    job_types jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_worker text := func_complete_jobs_and_claim.worker_id;
    v_max integer := func_complete_jobs_and_claim.max_jobs;
    v_lease integer := func_complete_jobs_and_claim.lease_seconds;
    v_provider text := func_complete_jobs_and_claim.provider;
    v_types text[];
    v_limited boolean;
    v_jobs jsonb;
    v_paused text[];
    v_expired boolean;
    v_due boolean;
    -- the completions: every job of the batch sorted (the lock order), tokens and ids
    -- in the order given, the positions (1-based) of the accepted ones, their scopes
    v_ids uuid[] := '{}';
    v_tokens uuid[] := '{}';
    v_given uuid[] := '{}';
    v_bad integer;
    v_unknown uuid;
    v_done bigint[];
    v_users text[];
    v_orgs text[];
    v_results jsonb := '[]'::jsonb;
BEGIN
    -- The completions: read and checked first, as a call of their own would be.
    IF jobs IS NULL OR jsonb_typeof(jobs) <> 'array' THEN
        RAISE EXCEPTION 'jobs must be a JSON array of {job_id, lease_token, result} objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(jobs) > 1000 OR pg_column_size(jobs) > 16777216 THEN
        RAISE EXCEPTION 'jobs holds % completions in % bytes; at most 1000 and 16 MiB are accepted per call',
                        jsonb_array_length(jobs), pg_column_size(jobs) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(jobs) > 0 THEN
        -- One pass reads and checks them. Each check names the first completion it
        -- refuses, as one call per job would have.
        BEGIN
            SELECT array_agg((x.e ->> 'job_id')::uuid ORDER BY x.n), array_agg((x.e ->> 'lease_token')::uuid ORDER BY x.n),
                   array_agg(DISTINCT (x.e ->> 'job_id')::uuid ORDER BY (x.e ->> 'job_id')::uuid),
                   min(x.n) FILTER (WHERE jsonb_typeof(x.e -> 'result') NOT IN ('object', 'null')
                                       OR pg_column_size(x.e -> 'result') > 1048576) - 1
              INTO v_given, v_tokens, v_ids, v_bad
              FROM jsonb_array_elements(func_complete_jobs_and_claim.jobs) WITH ORDINALITY AS x(e, n);
        EXCEPTION WHEN invalid_text_representation OR wrong_object_type OR cannot_coerce THEN
            RAISE EXCEPTION 'each completion needs job_id (a UUID), lease_token (a UUID) and optionally result'
                USING ERRCODE = 'invalid_parameter_value';
        END;
        IF v_bad IS NOT NULL THEN
            RAISE EXCEPTION 'jobs[%]: result must be a JSON object of at most 1 MiB', v_bad
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF array_position(v_given, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF array_position(v_tokens, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'lease_token is required: pass the token func_claim_jobs returned'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    -- Then the claim's arguments; max_jobs 0 claims nothing (func_complete_jobs).
    IF v_max IS NULL OR v_max NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'max_jobs must be between 0 and 1000, got %', coalesce(v_max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_max > 0 THEN
        IF v_worker IS NULL OR btrim(v_worker) = '' OR length(v_worker) > 255 THEN
            RAISE EXCEPTION 'worker_id must be a non-blank text of at most 255 characters'
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
    END IF;

    PERFORM pg_advisory_xact_lock_shared(x'6a6f62736c6f7473'::bigint);

    IF cardinality(v_given) > 0 THEN
        -- The queue entries first, in job id order (the lock order; see above). One entry
        -- needs no ordering: the write below locks it (an unknown job is found after it).
        IF cardinality(v_ids) > 1 THEN
            PERFORM 1 FROM public.job_queue q WHERE q.job_id = ANY (v_ids) ORDER BY q.job_id FOR UPDATE;
        END IF;

        -- Every completion whose token is current, in one statement per table (one call per
        -- job cost four statements each): the fence, the job, its event. A job listed twice
        -- is completed by its first entry; the second finds it completed, as a second call
        -- would. The statement builds the verdicts of the accepted ones; the refused ones
        -- (rare: a lease lost) get theirs from a second statement below, so the common case
        -- plans no join it does not need.
        WITH items AS (
            SELECT DISTINCT ON (u.job_id) u.job_id, u.token, u.n,
                   coalesce(nullif(func_complete_jobs_and_claim.jobs -> (u.n::integer - 1) -> 'result', 'null'::jsonb), '{}'::jsonb) AS result
              FROM unnest(v_given, v_tokens) WITH ORDINALITY AS u(job_id, token, n)
             ORDER BY u.job_id, u.n
        ), q AS (
            UPDATE public.job_queue q
               SET status = 'completed', run_after = now(), lease_token = NULL, lease_expires_at = NULL,
                   updated_at = now()
              FROM items i
             WHERE q.job_id = ANY (v_ids) AND q.job_id = i.job_id AND q.status = 'running' AND q.lease_token = i.token
            RETURNING q.job_id, q.worker_id, q.user_id, q.organization_id, q.attempt, i.n, i.result
        ), j AS (
            UPDATE public.jobs j
               SET status = 'completed', attempts = q.attempt, result = q.result, finished_at = now(),
                   updated_at = now()
              FROM q
             WHERE j.job_id = q.job_id
            RETURNING j.job_id
        ), ev AS (
            INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
            SELECT q.job_id, 'completed', 'running', 'completed', q.worker_id, jsonb_build_object('attempt', q.attempt)
              FROM q JOIN j ON j.job_id = q.job_id
        )
        SELECT jsonb_agg(jsonb_build_object('job_id', q.job_id, 'accepted', true, 'status', 'completed',
                                            'reason', NULL, 'attempt', q.attempt, 'run_after', NULL) ORDER BY q.n),
               array_agg(q.n ORDER BY q.n), array_agg(q.user_id), array_agg(q.organization_id)
          INTO v_results, v_done, v_users, v_orgs
          FROM q;
        IF coalesce(cardinality(v_done), 0) < cardinality(v_given) THEN
            -- an unknown job fails the whole call (nothing above is kept: the error rolls back)
            SELECT u.g INTO v_unknown FROM unnest(v_given) WITH ORDINALITY AS u(g, n)
             WHERE NOT EXISTS (SELECT 1 FROM public.job_queue q WHERE q.job_id = u.g) ORDER BY u.n LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'unknown job %', v_unknown USING ERRCODE = 'P0001';
            END IF;
            SELECT jsonb_agg(
                       CASE WHEN u.n = ANY (v_done)
                            THEN v_results -> (array_position(v_done, u.n) - 1)
                            -- listed again after its first entry completed it just now
                            WHEN EXISTS (SELECT 1 FROM unnest(v_given) WITH ORDINALITY AS e(g, m)
                                          WHERE e.g = u.job_id AND e.m < u.n AND e.m = ANY (v_done))
                            THEN jsonb_build_object('job_id', u.job_id, 'accepted', false, 'status', 'completed',
                                                    'reason', 'stale lease token: the job is completed, no longer running under this lease')
                            ELSE (SELECT jsonb_build_object(
                                             'job_id', u.job_id, 'accepted', false, 'status', jj.status,
                                             'reason', CASE WHEN qq.status = 'running'
                                                            THEN 'stale lease token: the job was claimed again after this lease expired or was released'
                                                            ELSE format('stale lease token: the job is %s, no longer running under this lease',
                                                                        jj.status) END)
                                    FROM public.job_queue qq JOIN public.jobs jj USING (job_id)
                                   WHERE qq.job_id = u.job_id)
                       END ORDER BY u.n)
              INTO v_results
              FROM unnest(v_given) WITH ORDINALITY AS u(job_id, n);
        END IF;
    END IF;
    IF v_max = 0 THEN
        -- Counters last in the lock order; with no limit anywhere there is nothing to
        -- free (checked here: the call alone costs a completion more than the check).
        IF v_users IS NOT NULL AND EXISTS (SELECT 1 FROM public.concurrency_limits) THEN
            PERFORM hub_internal.func_job_free_slots(v_users, v_orgs);
        END IF;
        RETURN jsonb_build_object('results', v_results);
    END IF;

    -- What the claim must deal with besides the queue, in one statement: the provider's
    -- pauses, whether any limit exists, whether a lease expired, whether a scheduled job
    -- is due (the completions above may have freed slots and ended expired leases).
    SELECT (SELECT array_agg(p.job_type) FROM public.queue_pauses p WHERE p.provider = v_provider),
           EXISTS (SELECT 1 FROM public.concurrency_limits),
           EXISTS (SELECT 1 FROM public.job_queue q
                    WHERE q.status = 'running' AND q.provider = v_provider AND q.lease_expires_at < now()),
           EXISTS (SELECT 1 FROM public.job_queue q
                    WHERE q.status = 'scheduled' AND q.provider = v_provider AND q.run_after <= now())
      INTO v_paused, v_limited, v_expired, v_due;
    -- The completions' slots (counters last in the lock order; the claim below sees them
    -- free). No limit exists otherwise, and none can appear while JOB_SLOTS is held.
    IF v_users IS NOT NULL AND v_limited THEN
        PERFORM hub_internal.func_job_free_slots(v_users, v_orgs);
    END IF;
    IF '' = ANY (v_paused) THEN
        RETURN jsonb_build_object('results', v_results, 'claim', jsonb_build_object('jobs', '[]'::jsonb, 'paused', true));
    END IF;
    IF NOT (v_limited OR v_expired OR v_due) THEN
        -- The common case in one statement (each statement of a function has its own
        -- fixed cost on this hot path): no limit exists, so there is nothing to count
        -- (no limit can appear while JOB_SLOTS is held in share mode), no lease expired,
        -- nothing scheduled is due. Jobs with no limit pay nothing for the limits.
        -- Its writes repeat those of the limited path's last statement on purpose: one
        -- statement shared by both (candidates UNION ALL the chosen ids) was planned
        -- with a join over the whole queue and made every claim 2.4x slower.
        WITH cand AS (
            SELECT q.job_id FROM public.job_queue q
             WHERE q.status = 'queued' AND q.provider = v_provider AND q.run_after <= now()
               AND (v_types IS NULL OR q.job_type = ANY (v_types))
               AND (v_paused IS NULL OR q.job_type <> ALL (v_paused))
             ORDER BY q.claim_key
             LIMIT v_max
             FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE public.job_queue q
               SET status = 'running', attempt = q.attempt + 1, worker_id = v_worker,
                   lease_token = gen_random_uuid(),
                   lease_expires_at = now() + make_interval(secs => v_lease),
                   claimed_at = now(), updated_at = now()
              FROM cand
             WHERE q.job_id = cand.job_id
            RETURNING q.job_id, q.attempt, q.lease_token, q.lease_expires_at, q.claim_key
        ), j AS (
            UPDATE public.jobs j
               SET status = 'running', attempts = c.attempt,
                   started_at = coalesce(j.started_at, now()), updated_at = now()
              FROM claimed c
             WHERE j.job_id = c.job_id
            RETURNING j.job_id, j.job_type, j.provider, j.priority, j.payload, j.user_id, j.organization_id,
                      j.timeout_seconds
        ), ev AS (
            INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
            SELECT c.job_id, 'claimed', 'queued', 'running', v_worker,
                   jsonb_build_object('attempt', c.attempt, 'lease_expires_at', c.lease_expires_at)
              FROM claimed c
        )
        SELECT jsonb_build_object(
                   'jobs', coalesce(jsonb_agg(jsonb_build_object(
                       'job_id', c.job_id, 'lease_token', c.lease_token, 'attempt', c.attempt,
                       'job_type', j.job_type, 'provider', j.provider, 'priority', j.priority,
                       'payload', j.payload, 'user_id', j.user_id, 'organization_id', j.organization_id,
                       'lease_expires_at', c.lease_expires_at, 'timeout_seconds', j.timeout_seconds)
                       ORDER BY c.claim_key), '[]'::jsonb),
                   'next_run_after', CASE WHEN count(*) < v_max
                                          THEN hub_internal.func_job_next_run_after(v_provider) END)
          INTO v_jobs
          FROM claimed c JOIN j ON j.job_id = c.job_id;
        RETURN jsonb_build_object('results', v_results, 'claim', v_jobs);
    END IF;
    -- A limit exists, a lease expired or a scheduled job is due: the counted claim.
    RETURN jsonb_build_object('results', v_results, 'claim', hub_internal.func_job_counted_claim(
        v_worker, v_max, v_lease, v_provider, v_types, v_paused));
END;
$$;
COMMENT ON FUNCTION public.func_complete_jobs_and_claim(jsonb, text, integer, integer, text, jsonb) IS
    'Completes the jobs as func_complete_jobs(jobs) would, then claims up to max_jobs as func_claim_jobs(worker_id, max_jobs, lease_seconds, provider, job_types) would (max_jobs 0: claims nothing and returns only results), in one transaction (one round trip and one commit for a worker that finishes jobs and takes the next). Returns {results: [...as func_complete_jobs], claim: {...as func_claim_jobs}}. Any error (a malformed completion, max_jobs outside 0..1000, ...) rolls back both.';

-- The claim alone: the same body with no completions.
CREATE OR REPLACE FUNCTION public.func_claim_jobs(
    worker_id text,
    max_jobs integer DEFAULT 1,
    lease_seconds integer DEFAULT 20,
    provider text DEFAULT 'local',
    job_types jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF max_jobs IS NULL OR max_jobs NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_jobs must be between 1 and 1000, got %', coalesce(max_jobs::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN public.func_complete_jobs_and_claim('[]'::jsonb, worker_id, max_jobs, lease_seconds, provider, job_types)
           -> 'claim';
END;
$$;
COMMENT ON FUNCTION public.func_claim_jobs(text, integer, integer, text, jsonb) IS
    'Claims up to max_jobs queued jobs of a provider (optionally only the given job_types) for worker_id, highest effective priority first (priority + 1 point per 10 s waited, see job_queue.claim_key), skipping rows other claims hold (FOR UPDATE SKIP LOCKED) and jobs whose global, organisation or user limit is full (checked under the counters'' row locks, so limits hold under any concurrency; a counter busy this instant leaves its job to the next claim). Jobs whose lease expired are requeued (or failed on their last attempt) by this same call and can be claimed by it. Scheduled jobs that are due join the queue first; a paused provider gives nothing ({jobs: [], paused: true}) and paused job types are skipped. Returns {jobs: [{job_id, lease_token, attempt, job_type, provider, priority, payload, user_id, organization_id, lease_expires_at, timeout_seconds}], next_run_after}: when fewer than max_jobs were claimed, next_run_after is the earliest time a scheduled job of the provider becomes due (null: none), so an idle worker can wake then. Raises invalid_parameter_value for a blank worker_id, max_jobs outside 1..1000, lease_seconds outside 1..86400 or malformed job_types.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_complete_jobs_and_claim(jsonb, text, integer, integer, text, jsonb)',
        'public.func_claim_jobs(text, integer, integer, text, jsonb)'
    ]::regprocedure[]);
