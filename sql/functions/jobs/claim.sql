-- sql/functions/jobs/claim.sql
-- The claim and the helpers it shares with the other job functions.
--
-- Locks (no two job functions can deadlock):
--   * a job's rows: approval_requests -> job_queue -> jobs; anyone who touches a jobs
--     row holds its job_queue row first;
--   * counters (concurrency_limits) in (scope_type, scope_id) order: global first.
-- A claim takes its job_queue rows with SKIP LOCKED (never waits for them), waits only
-- for the global counter, and takes organisation/user counters with SKIP LOCKED in one
-- sorted pass; completions wait for their counters in the same order. So a claim never
-- waits while holding what a waiter needs, batches included.
-- Every function that changes a running count holds the transaction advisory lock
-- JOB_SLOTS (0x6a6f62736c6f7473, 'jobslots') in SHARE mode; func_set_concurrency_limit
-- takes it exclusively while it creates a counter, so a new counter starts exact.
-- Nothing here keeps session state: it all works through transaction-mode poolers.

-- Gives back one slot per element (p_users[i], p_orgs[i]: the job's user and organisation)
-- in every limited scope, locking the counters in the fixed order. Returns true when a
-- limited scope changed.
CREATE OR REPLACE FUNCTION hub_internal.func_job_free_slots(p_users text[], p_orgs text[])
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
COMMENT ON FUNCTION hub_internal.func_job_free_slots(text[], text[]) IS
    'Internal: returns one running slot per (user, organisation) pair to the global, organisation and user counters that exist, locking them in (scope_type, scope_id) order. Callers hold the JOB_SLOTS advisory lock in share mode. Returns true when a limited scope changed.';

-- Puts running jobs that lost their worker (lease expired, worker dead) back in the
-- queue, or fails them when that was their last attempt. The caller has locked their
-- job_queue rows and frees their slots. One event each.
CREATE OR REPLACE FUNCTION hub_internal.func_job_requeue_lost(p_job_ids uuid[], p_event text, p_reason text)
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
COMMENT ON FUNCTION hub_internal.func_job_requeue_lost(uuid[], text, text) IS
    'Internal: running jobs whose worker is gone go back to queued (claimable at once, the attempt stays used) or to failed on their last attempt; one job_events row each (p_event). The caller locked the job_queue rows and frees the slots.';

-- When the next scheduled job of a provider becomes due (one probe of its index).
-- PL/pgSQL, not SQL: a SQL function with a SET clause is never inlined, and its query is
-- parsed and planned again in every transaction that calls it (~90 us measured, more
-- than the probe itself); a PL/pgSQL function keeps its plan for the session.
CREATE OR REPLACE FUNCTION hub_internal.func_job_next_run_after(p_provider text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN (SELECT min(q.run_after) FROM public.job_queue q WHERE q.status = 'scheduled' AND q.provider = p_provider);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_next_run_after(text) IS
    'Internal: the earliest run_after of the provider''s scheduled queue entries (NULL when none), read through job_queue_scheduled_idx.';

-- The queued jobs a claim looks at first, locked (SKIP LOCKED) in claim order. The
-- saturated scopes (read unlocked: only a hint, the claim decides under the counters'
-- locks) are skipped. When an organisation is full, a plain walk in claim order would
-- step over its whole backlog on every claim (10,000 queued jobs of full organisations:
-- ~17 ms per claim); instead the organisations with queued jobs are visited one index
-- descent each, full ones skipped, and each gives at most what its limit still allows.
CREATE OR REPLACE FUNCTION hub_internal.func_job_candidates(p_provider text, p_types text[], p_skip_types text[], p_full text[], p_fetch integer)
RETURNS TABLE (job_id uuid, user_id text, organization_id text, claim_key timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    IF p_full IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(p_full) AS f WHERE f LIKE 'organization:%') THEN
        RETURN QUERY
        SELECT q.job_id, q.user_id, q.organization_id, q.claim_key
          FROM public.job_queue q
         WHERE q.status = 'queued' AND q.provider = p_provider AND q.run_after <= now()
           AND (p_types IS NULL OR q.job_type = ANY (p_types))
           AND (p_skip_types IS NULL OR q.job_type <> ALL (p_skip_types))
           AND (p_full IS NULL OR NOT ('user:' || q.user_id = ANY (p_full)))
         ORDER BY q.claim_key
         LIMIT p_fetch
         FOR UPDATE SKIP LOCKED;
        RETURN;
    END IF;
    RETURN QUERY
    WITH RECURSIVE orgs (org) AS (
        (SELECT q.organization_id FROM public.job_queue q
          WHERE q.status = 'queued' AND q.provider = p_provider
          ORDER BY q.organization_id LIMIT 1)
        UNION ALL
        SELECT (SELECT q.organization_id FROM public.job_queue q
                 WHERE q.status = 'queued' AND q.provider = p_provider AND q.organization_id > o.org
                 ORDER BY q.organization_id LIMIT 1)
          FROM orgs o WHERE o.org IS NOT NULL
    )
    SELECT c.job_id, c.user_id, c.organization_id, c.claim_key
      FROM orgs o
      LEFT JOIN public.concurrency_limits l ON l.scope_type = 'organization' AND l.scope_id = o.org
      CROSS JOIN LATERAL (
          SELECT q.job_id, q.user_id, q.organization_id, q.claim_key
            FROM public.job_queue q
           WHERE q.status = 'queued' AND q.provider = p_provider AND q.organization_id = o.org
             AND q.run_after <= now()
             AND (p_types IS NULL OR q.job_type = ANY (p_types))
             AND (p_skip_types IS NULL OR q.job_type <> ALL (p_skip_types))
             AND NOT ('user:' || q.user_id = ANY (p_full))
           ORDER BY q.claim_key
           LIMIT least(p_fetch, greatest(coalesce(l.max_running - l.running, p_fetch), 0))
           FOR UPDATE OF q SKIP LOCKED) c
     WHERE o.org IS NOT NULL AND NOT ('organization:' || o.org = ANY (p_full))
     ORDER BY c.claim_key
     LIMIT p_fetch;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_candidates(text, text[], text[], text[], integer) IS
    'Internal: up to p_fetch queued jobs of a provider (of p_types when given, never of the paused p_skip_types) in claim order, locked FOR UPDATE SKIP LOCKED, skipping the saturated scopes listed in p_full (NULL: no limit exists) (''organization:<id>'', ''user:<id>''). With a full organisation it visits organisations one index descent each instead of walking the full one''s backlog.';

CREATE OR REPLACE FUNCTION public.func_claim_jobs(
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
    v_worker text := func_claim_jobs.worker_id;
    v_max integer := func_claim_jobs.max_jobs;
    v_lease integer := func_claim_jobs.lease_seconds;
    v_provider text := func_claim_jobs.provider;
    v_types text[];
    v_full text[];
    v_limited boolean;
    -- expired leases found on the way (requeued here, then candidates like any other)
    e_ids uuid[];
    e_users text[];
    e_orgs text[];
    v_limit_keys text[];
    v_scopes text[];
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
    v_pos integer[] := ARRAY[NULL, NULL, NULL]::integer[];
    v_ok boolean;
    v_jobs jsonb;
    v_paused text[];
    v_next timestamptz;
    v_expired boolean;
    v_due boolean;
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

    -- 0. What this claim must deal with, in one statement: the provider's pauses, whether
    -- any limit exists, whether a lease expired, whether a scheduled job is due.
    SELECT (SELECT array_agg(p.job_type) FROM public.queue_pauses p WHERE p.provider = v_provider),
           EXISTS (SELECT 1 FROM public.concurrency_limits),
           EXISTS (SELECT 1 FROM public.job_queue q
                    WHERE q.status = 'running' AND q.provider = v_provider AND q.lease_expires_at < now()),
           EXISTS (SELECT 1 FROM public.job_queue q
                    WHERE q.status = 'scheduled' AND q.provider = v_provider AND q.run_after <= now())
      INTO v_paused, v_limited, v_expired, v_due;
    IF '' = ANY (v_paused) THEN
        RETURN jsonb_build_object('jobs', '[]'::jsonb, 'paused', true);
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
        RETURN v_jobs;
    END IF;
    -- Scheduled entries whose time has come join the queue (run_at reached, retry
    -- backoff over): one probe of job_queue_scheduled_idx when none is due, so waiting
    -- jobs cost a claim nothing however many there are.
    UPDATE public.job_queue q SET status = 'queued', updated_at = now()
     WHERE q.job_id IN (SELECT s.job_id FROM public.job_queue s
                         WHERE s.status = 'scheduled' AND s.provider = v_provider AND s.run_after <= now()
                         ORDER BY s.run_after LIMIT 1000
                         FOR UPDATE SKIP LOCKED);

    -- 1. Leases that expired (their worker died or hung): requeued below, in this call.
    SELECT array_agg(x.job_id), array_agg(x.user_id), array_agg(x.organization_id)
      INTO e_ids, e_users, e_orgs
      FROM (SELECT q.job_id, q.user_id, q.organization_id FROM public.job_queue q
             WHERE q.status = 'running' AND q.provider = v_provider
               AND q.lease_expires_at < now()
             ORDER BY q.lease_expires_at
             LIMIT 100
             FOR UPDATE SKIP LOCKED) x;

    -- 2. Candidates. The limited scopes cannot change while JOB_SLOTS is held in share
    -- mode; which of them are full is read unlocked here and only avoids walking jobs
    -- that surely cannot run: the decision is made under the counters' locks below.
    SELECT count(*) > 0, coalesce(array_agg(l.scope_type || ':' || l.scope_id), '{}'),
           coalesce(array_agg(l.scope_type || ':' || l.scope_id) FILTER (WHERE l.running >= l.max_running), '{}')
      INTO v_limited, v_limit_keys, v_full
      FROM public.concurrency_limits l;
    IF e_ids IS NULL AND 'global:' = ANY (v_full) THEN
        RETURN jsonb_build_object('jobs', '[]'::jsonb, 'next_run_after', hub_internal.func_job_next_run_after(v_provider));
    END IF;
    -- Expired ones first (they have waited longest), then the queue in claim order.
    SELECT coalesce(array_agg(x.job_id ORDER BY x.first DESC, x.claim_key), '{}'),
           coalesce(array_agg(x.user_id ORDER BY x.first DESC, x.claim_key), '{}'),
           coalesce(array_agg(x.organization_id ORDER BY x.first DESC, x.claim_key), '{}')
      INTO c_ids, c_users, c_orgs
      FROM (SELECT q.job_id, q.user_id, q.organization_id, q.claim_key, true AS first
              FROM public.job_queue q WHERE q.job_id = ANY (e_ids)
              AND (v_types IS NULL OR q.job_type = ANY (v_types))
              AND (v_paused IS NULL OR q.job_type <> ALL (v_paused))
            UNION ALL
            SELECT y.job_id, y.user_id, y.organization_id, y.claim_key, false
              FROM hub_internal.func_job_candidates(v_provider, v_types, v_paused, v_full,
                                              -- spares only where a limit may refuse some
                                              CASE WHEN v_limited THEN v_max * 2 + 8 ELSE v_max END) y) x;
    IF e_ids IS NULL AND cardinality(c_ids) = 0 THEN
        RETURN jsonb_build_object('jobs', '[]'::jsonb, 'next_run_after', hub_internal.func_job_next_run_after(v_provider));
    END IF;

    -- 3. The counters they count against, locked in the fixed order: the global one
    -- first, waiting for it (every claim and completion needs it); the others with SKIP
    -- LOCKED, so claims do not queue up behind one another on the busiest organisation:
    -- a job whose counter another transaction holds right now waits for the next claim.
    -- (c_orgs/c_users include the expired jobs' scopes: they head the candidates.)
    k_keys := '{}'; k_running := '{}'; k_max := '{}';
    IF v_limited THEN
        SELECT coalesce(array_agg(l.key ORDER BY l.global DESC, l.scope_type, l.scope_id), '{}'),
               coalesce(array_agg(l.running ORDER BY l.global DESC, l.scope_type, l.scope_id), '{}'),
               coalesce(array_agg(l.max_running ORDER BY l.global DESC, l.scope_type, l.scope_id), '{}')
          INTO k_keys, k_running, k_max
          FROM (SELECT true AS global, c.scope_type, c.scope_id, 'global:' AS key, c.running, c.max_running
                  FROM public.concurrency_limits c WHERE c.scope_type = 'global'
                   FOR UPDATE) l;
        SELECT k_keys || coalesce(array_agg(l.scope_type || ':' || l.scope_id ORDER BY l.scope_type, l.scope_id), '{}'),
               k_running || coalesce(array_agg(l.running ORDER BY l.scope_type, l.scope_id), '{}'),
               k_max || coalesce(array_agg(l.max_running ORDER BY l.scope_type, l.scope_id), '{}')
          INTO k_keys, k_running, k_max
          FROM (SELECT c.scope_type, c.scope_id, c.running, c.max_running
                  FROM public.concurrency_limits c
                 WHERE ((c.scope_type = 'organization' AND c.scope_id = ANY (c_orgs))
                        OR (c.scope_type = 'user' AND c.scope_id = ANY (c_users)))
                       -- a full one is not needed (and holding it would make the
                       -- completion that frees it wait) unless an expired job gives a slot back
                       AND (c.running < c.max_running
                            OR (c.scope_type = 'organization' AND c.scope_id = ANY (e_orgs))
                            OR (c.scope_type = 'user' AND c.scope_id = ANY (e_users)))
                 ORDER BY c.scope_type, c.scope_id
                 FOR UPDATE SKIP LOCKED) l;
    END IF;
    k_before := k_running;

    -- 4. Expired leases give their slot back and are requeued (or failed when out of
    -- attempts), those whose counters this claim holds; they head the candidates.
    IF e_ids IS NOT NULL THEN
        FOR i IN 1..cardinality(e_ids) LOOP
            v_scopes := ARRAY['global:', 'organization:' || e_orgs[i], 'user:' || e_users[i]];
            v_ok := true;
            FOR s IN 1..3 LOOP
                v_pos[s] := array_position(k_keys, v_scopes[s]);
                IF v_pos[s] IS NULL AND v_scopes[s] = ANY (v_limit_keys) THEN
                    v_ok := false;  -- its counter is busy: the next claim (or the reaper) takes it
                END IF;
            END LOOP;
            CONTINUE WHEN NOT v_ok;
            PERFORM hub_internal.func_job_requeue_lost(ARRAY[e_ids[i]], 'lease_expired', 'lease expired');
            FOR s IN 1..3 LOOP
                IF v_pos[s] IS NOT NULL THEN
                    k_running[v_pos[s]] := k_running[v_pos[s]] - 1;
                END IF;
            END LOOP;
        END LOOP;
    END IF;

    -- 5. Take candidates in order while every scope they count against has room.
    FOR i IN 1..cardinality(c_ids) LOOP
        EXIT WHEN cardinality(v_accept) >= v_max;
        v_scopes := ARRAY['global:', 'organization:' || c_orgs[i], 'user:' || c_users[i]];
        v_ok := true;
        FOR s IN 1..3 LOOP
            v_pos[s] := array_position(k_keys, v_scopes[s]);
            IF v_pos[s] IS NULL THEN
                IF v_scopes[s] = ANY (v_limit_keys) THEN
                    v_ok := false;  -- limited, but its counter is busy right now
                END IF;
            ELSIF k_running[v_pos[s]] >= k_max[v_pos[s]] THEN
                v_ok := false;
            END IF;
        END LOOP;
        CONTINUE WHEN NOT v_ok;
        -- an expired job not requeued above (last attempt, or its counter was busy)
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
        RETURNING j.job_id, j.job_type, j.provider, j.priority, j.payload, j.user_id, j.organization_id,
                  j.timeout_seconds
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
               'lease_expires_at', c.lease_expires_at, 'timeout_seconds', j.timeout_seconds)
               ORDER BY array_position(v_accept, c.job_id)), '[]'::jsonb)
      INTO v_jobs
      FROM claimed c JOIN j ON j.job_id = c.job_id;

    IF cardinality(v_accept) < v_max THEN
        v_next := hub_internal.func_job_next_run_after(v_provider);
    END IF;
    RETURN jsonb_build_object('jobs', v_jobs, 'next_run_after', v_next);
END;
$$;
COMMENT ON FUNCTION public.func_claim_jobs(text, integer, integer, text, jsonb) IS
    'Claims up to max_jobs queued jobs of a provider (optionally only the given job_types) for worker_id, highest effective priority first (priority + 1 point per 10 s waited, see job_queue.claim_key), skipping rows other claims hold (FOR UPDATE SKIP LOCKED) and jobs whose global, organisation or user limit is full (checked under the counters'' row locks, so limits hold under any concurrency; a counter busy this instant leaves its job to the next claim). Jobs whose lease expired are requeued (or failed on their last attempt) by this same call and can be claimed by it. Scheduled jobs that are due join the queue first; a paused provider gives nothing ({jobs: [], paused: true}) and paused job types are skipped. Returns {jobs: [{job_id, lease_token, attempt, job_type, provider, priority, payload, user_id, organization_id, lease_expires_at, timeout_seconds}], next_run_after}: when fewer than max_jobs were claimed, next_run_after is the earliest time a scheduled job of the provider becomes due (null: none), so an idle worker can wake then. Raises invalid_parameter_value for a blank worker_id, max_jobs outside 1..1000, lease_seconds outside 1..86400 or malformed job_types.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_job_free_slots(text[], text[])',
        'hub_internal.func_job_requeue_lost(uuid[], text, text)',
        'hub_internal.func_job_next_run_after(text)',
        'hub_internal.func_job_candidates(text, text[], text[], text[], integer)',
        'public.func_claim_jobs(text, integer, integer, text, jsonb)'
    ]::regprocedure[]);
