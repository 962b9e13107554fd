-- sql/functions/jobs/queue_internals.sql
-- What the claim (jobs/claim.sql) shares with the other job functions: slot freeing,
-- requeueing lost jobs, the next due time, the candidates of a counted claim.
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

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_job_free_slots(text[], text[])',
        'hub_internal.func_job_requeue_lost(uuid[], text, text)',
        'hub_internal.func_job_next_run_after(text)',
        'hub_internal.func_job_candidates(text, text[], text[], text[], integer)'
    ]::regprocedure[]);
