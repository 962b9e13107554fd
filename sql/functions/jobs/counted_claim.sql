-- sql/functions/jobs/counted_claim.sql
-- The claim when it must count (func_complete_jobs_and_claim, jobs/claim.sql, calls it
-- when a concurrency limit exists, a lease expired or a scheduled job is due; the common
-- case needs none of this and stays one statement there). Locks as described in
-- jobs/claim.sql; the caller holds JOB_SLOTS in share mode, so the limited scopes cannot
-- change while this runs.

CREATE OR REPLACE FUNCTION hub_internal.func_job_counted_claim(
    v_worker text, v_max integer, v_lease integer, v_provider text, v_types text[], v_paused text[]
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
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
    v_next timestamptz;
BEGIN
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
COMMENT ON FUNCTION hub_internal.func_job_counted_claim(text, integer, integer, text, text[], text[]) IS
    'Internal: the claim of func_complete_jobs_and_claim when it must count: due scheduled entries join the queue, expired leases are requeued (or failed), candidates are taken in claim order while every global, organisation and user limit they count against has room (under the counters'' row locks). Returns {jobs, next_run_after} as func_claim_jobs. The caller checked the arguments and holds JOB_SLOTS in share mode.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY['hub_internal.func_job_counted_claim(text, integer, integer, text, text[], text[])']::regprocedure[]);
