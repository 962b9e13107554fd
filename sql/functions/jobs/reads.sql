-- sql/functions/jobs/reads.sql
-- The job hub's reads (tables in sql/migrations/0005). Keyset pages, never "the newest
-- 100": pass the returned next as after_job_id.

-- The reads. Keyset pages (never "the newest 100"): pass the returned next as after_job_id.
CREATE OR REPLACE FUNCTION public.func_queue_statistics()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'depth_by_state', (
            SELECT jsonb_object_agg(s.state, coalesce(c.n, 0))
              FROM unnest(ARRAY['awaiting_approval', 'queued', 'running', 'completed', 'failed', 'cancelled']) AS s(state)
              LEFT JOIN (SELECT j.status, count(*) AS n FROM public.jobs j GROUP BY j.status) c ON c.status = s.state),
        'running_by_user', (
            SELECT coalesce(jsonb_agg(jsonb_build_object('user_id', r.user_id, 'running', r.n) ORDER BY r.n DESC, r.user_id), '[]'::jsonb)
              FROM (SELECT q.user_id, count(*) AS n FROM public.job_queue q WHERE q.status = 'running' GROUP BY q.user_id) r),
        'running_by_organization', (
            SELECT coalesce(jsonb_agg(jsonb_build_object('organization_id', r.organization_id, 'running', r.n)
                                      ORDER BY r.n DESC, r.organization_id), '[]'::jsonb)
              FROM (SELECT q.organization_id, count(*) AS n FROM public.job_queue q WHERE q.status = 'running'
                     GROUP BY q.organization_id) r),
        'oldest_waiting', (
            SELECT jsonb_build_object('job_id', q.job_id, 'queued_at', q.enqueued_at,
                                      'age_seconds', round(extract(epoch FROM now() - q.enqueued_at)::numeric, 3))
              FROM public.job_queue q WHERE q.status = 'queued' ORDER BY q.enqueued_at LIMIT 1),
        'limits', (
            SELECT coalesce(jsonb_agg(jsonb_build_object('scope_type', l.scope_type, 'scope_id', nullif(l.scope_id, ''),
                                                         'max_running', l.max_running, 'running', l.running)
                                      ORDER BY l.scope_type, l.scope_id), '[]'::jsonb)
              FROM public.concurrency_limits l))
$$;
COMMENT ON FUNCTION public.func_queue_statistics() IS
    'Queue health computed by the database: {depth_by_state: {awaiting_approval, queued, running, completed, failed, cancelled}, running_by_user: [{user_id, running}], running_by_organization: [{organization_id, running}], oldest_waiting: {job_id, queued_at, age_seconds} | null, limits: [{scope_type, scope_id, max_running, running}]}.';

CREATE OR REPLACE FUNCTION public.func_queue_depth()
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT ((SELECT count(*) FROM public.job_queue AS q WHERE q.status = 'queued')
          + (SELECT count(*) FROM public.job_queue AS q WHERE q.status = 'scheduled'))::integer
$$;
COMMENT ON FUNCTION public.func_queue_depth() IS
    'Jobs waiting to be claimed (queue entries queued, and scheduled: waiting for run_at or a retry backoff), counted through the claim''s and the schedule''s partial indexes: its cost grows with the queue, not with the job history. Equals func_queue_statistics() -> depth_by_state -> queued.';

CREATE OR REPLACE FUNCTION hub_internal.func_job_summary(j public.jobs)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'job_id', j.job_id, 'user_id', j.user_id, 'organization_id', j.organization_id,
        'job_type', j.job_type, 'provider', j.provider, 'priority', j.priority, 'status', j.status,
        'attempts', j.attempts, 'max_attempts', j.max_attempts, 'estimated_cost', j.estimated_cost,
        'submitted_at', j.submitted_at, 'started_at', j.started_at, 'finished_at', j.finished_at,
        'error', j.error, 'provider_job_id', j.provider_job_id, 'provider_status', j.provider_status)
$$;
COMMENT ON FUNCTION hub_internal.func_job_summary(public.jobs) IS
    'Internal: the row shape of func_list_jobs (a job without payload, result and history).';

CREATE OR REPLACE FUNCTION public.func_list_jobs(
    status text DEFAULT NULL, user_id text DEFAULT NULL, after_job_id uuid DEFAULT NULL, row_limit integer DEFAULT 50,
    organization_id text DEFAULT NULL, job_type text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_rows jsonb;
    v_count integer;
BEGIN
    IF status IS NOT NULL AND status NOT IN ('awaiting_approval', 'queued', 'running', 'completed', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'unknown job status %; accepted: awaiting_approval, queued, running, completed, failed, cancelled',
                        quote_literal(status) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF row_limit IS NULL OR row_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'row_limit must be between 1 and 1000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF status IS NULL THEN
        SELECT coalesce(jsonb_agg(hub_internal.func_job_summary(x) ORDER BY x.job_id DESC), '[]'::jsonb), count(*)
          INTO v_rows, v_count
          FROM (SELECT * FROM public.jobs j
                 WHERE (user_id IS NULL OR j.user_id = user_id)
                   AND (organization_id IS NULL OR j.organization_id = organization_id)
                   AND (job_type IS NULL OR j.job_type = job_type)
                   AND (after_job_id IS NULL OR j.job_id < after_job_id)
                 ORDER BY j.job_id DESC
                 LIMIT row_limit + 1) x;
    ELSE
        -- By status through the queue entries (job_queue_job_status_idx: jobs has no index
        -- on status, so that claims and completions update its rows in place, 0097). An
        -- entry's status is its job's (every function writes both; 0097 made old rows
        -- agree): repeating the test on jobs.status made the planner expect almost no
        -- rows and hash-join a scan of all jobs instead of walking the index newest first.
        SELECT coalesce(jsonb_agg(hub_internal.func_job_summary(x) ORDER BY x.job_id DESC), '[]'::jsonb), count(*)
          INTO v_rows, v_count
          FROM (SELECT j.* FROM public.job_queue q JOIN public.jobs j ON j.job_id = q.job_id
                 WHERE (CASE q.status::text WHEN 'scheduled' THEN 'queued' WHEN 'pending_approval' THEN 'awaiting_approval'
                                            ELSE q.status::text END) = status
                   AND (user_id IS NULL OR j.user_id = user_id)
                   AND (organization_id IS NULL OR j.organization_id = organization_id)
                   AND (job_type IS NULL OR j.job_type = job_type)
                   AND (after_job_id IS NULL OR q.job_id < after_job_id)
                 ORDER BY q.job_id DESC
                 LIMIT row_limit + 1) x;
    END IF;
    IF v_count > row_limit THEN
        v_rows := v_rows - row_limit;
    END IF;
    RETURN jsonb_build_object('rows', v_rows, 'more', v_count > row_limit,
                              'next', CASE WHEN v_count > row_limit THEN v_rows -> (row_limit - 1) -> 'job_id' END);
END;
$$;
COMMENT ON FUNCTION public.func_list_jobs(text, text, uuid, integer, text, text) IS
    'Jobs newest first (ids are UUIDv7), optionally of one status, user, organization_id and/or job_type, row_limit (1..1000) per page: {rows, more, next}; pass next as after_job_id for the following page. Unknown status: invalid_parameter_value.';

CREATE OR REPLACE FUNCTION public.func_get_job(job_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_job jsonb;
BEGIN
    SELECT to_jsonb(j) INTO v_job FROM public.jobs j WHERE j.job_id = job_id;
    IF v_job IS NULL THEN
        RAISE EXCEPTION 'unknown job %', coalesce(job_id::text, 'NULL') USING ERRCODE = 'P0001';
    END IF;
    RETURN v_job || jsonb_build_object(
        -- the lease token is the worker's fencing secret: never handed out here
        'queue', (SELECT to_jsonb(q) - 'lease_token' FROM public.job_queue q WHERE q.job_id = job_id),
        'approval_request', (SELECT to_jsonb(r) FROM public.approval_requests r WHERE r.job_id = job_id),
        'events', (SELECT coalesce(jsonb_agg(to_jsonb(e) - 'job_id' - 'tx' ORDER BY e.event_id), '[]'::jsonb)
                     FROM public.job_events e WHERE e.job_id = job_id),
        -- sql/functions/storage/uploads.sql (plpgsql resolves it at run time)
        'upload_progress', public.func_upload_progress(job_id));
END;
$$;
COMMENT ON FUNCTION public.func_get_job(uuid) IS
    'One job with its queue entry (without the lease token), its approval request (or null), all its events in order and its upload_progress (func_upload_progress). Unknown job: P0001.';

CREATE OR REPLACE FUNCTION public.func_list_active_provider_jobs(
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
      -- The page's entries through job_queue_active_idx (0097; a scheduled entry is a
      -- queued job, an entry's status is its job's), then their jobs: joined after the
      -- limit, a page costs its own rows whatever the number of finished jobs.
      FROM (SELECT q.job_id FROM public.job_queue q
             WHERE q.provider = provider AND q.status IN ('scheduled', 'queued', 'running')
               AND (after_job_id IS NULL OR q.job_id > after_job_id)
             ORDER BY q.job_id
             LIMIT row_limit + 1) a
      JOIN LATERAL (SELECT j.job_id, j.provider_job_id, j.status, j.provider_status
                      FROM public.jobs j WHERE j.job_id = a.job_id) x ON true;
    IF v_count > row_limit THEN
        v_rows := v_rows - row_limit;
    END IF;
    RETURN jsonb_build_object('rows', v_rows, 'more', v_count > row_limit,
                              'next', CASE WHEN v_count > row_limit THEN v_rows -> (row_limit - 1) -> 'job_id' END);
END;
$$;
COMMENT ON FUNCTION public.func_list_active_provider_jobs(text, uuid, integer) IS
    'Every active (queued or running) job of a provider, oldest first, keyset-paged: {rows: [{job_id, provider_job_id, status, provider_status}], more, next}. provider_status is the provider''s own (pending, uploading, queued, running); status the hub''s. Status polling walks all pages, so no active job is ever missed.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_queue_statistics()',
        'public.func_queue_depth()',
        'hub_internal.func_job_summary(public.jobs)',
        'public.func_list_jobs(text, text, uuid, integer, text, text)',
        'public.func_get_job(uuid)',
        'public.func_list_active_provider_jobs(text, uuid, integer)'
    ]::regprocedure[]);
