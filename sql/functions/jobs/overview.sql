-- sql/functions/jobs/overview.sql
-- The dashboard's jobs screen in one call: what waits, what runs where, what failed
-- lately and what waits for a person. The dashboard asks every few seconds, so each
-- part reads an index whose size follows the live queue, never the job history:
--   * queued:   job_queue_claim_idx (partial: status = 'queued'), as func_queue_depth;
--   * running:  job_queue_worker_idx / job_queue_lease_idx (partial: status = 'running');
--   * failures: job_queue_job_status_idx (the job's status, job_id), newest first, LIMIT recent;
--   * approvals: approval_requests_pending_idx (partial: status = 'pending').

CREATE OR REPLACE FUNCTION public.func_jobs_overview(recent integer DEFAULT 10)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF recent IS NULL OR recent NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'recent must be between 1 and 100, got %', coalesce(recent::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN jsonb_build_object(
        'now', now(),
        'queued', (SELECT count(*) FROM public.job_queue q WHERE q.status = 'queued'),
        'running', (SELECT count(*) FROM public.job_queue q WHERE q.status = 'running'),
        'running_by_worker', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'worker_id', w.worker_id, 'running', w.n, 'job_ids', to_jsonb(w.job_ids),
                       'since', w.since) ORDER BY w.n DESC, w.worker_id), '[]'::jsonb)
              FROM (SELECT coalesce(q.worker_id, 'provider ' || q.provider) AS worker_id,
                           count(*) AS n,
                           (array_agg(q.job_id ORDER BY q.claimed_at, q.job_id))[1:5] AS job_ids,
                           min(q.claimed_at) AS since
                      FROM public.job_queue q
                     WHERE q.status = 'running'
                     GROUP BY 1) AS w),
        'awaiting_approval', (
            SELECT count(*) FROM public.approval_requests r WHERE r.status = 'pending'),
        'approvals', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'request_id', a.request_id, 'job_id', a.job_id,
                       'requested_by', a.requested_by, 'job_type', j.job_type,
                       'estimated_cost', j.estimated_cost, 'expires_at', a.expires_at)
                       ORDER BY a.expires_at, a.request_id), '[]'::jsonb)
              FROM (SELECT * FROM public.approval_requests r
                     WHERE r.status = 'pending'
                     ORDER BY r.expires_at, r.request_id
                     LIMIT recent) AS a
              JOIN public.jobs j ON j.job_id = a.job_id),
        'recent_failures', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'job_id', f.job_id, 'user_id', f.user_id, 'job_type', f.job_type,
                       'provider', f.provider, 'attempts', f.attempts,
                       'finished_at', f.finished_at,
                       'error', left(split_part(btrim(coalesce(f.error, ''), E' \n'), E'\n', 1), 300))
                       ORDER BY f.job_id DESC), '[]'::jsonb)
              FROM (SELECT j.* FROM public.job_queue q JOIN public.jobs j ON j.job_id = q.job_id
                     WHERE (CASE q.status::text WHEN 'scheduled' THEN 'queued' WHEN 'pending_approval' THEN 'awaiting_approval'
                                                ELSE q.status::text END) = 'failed'
                     ORDER BY q.job_id DESC
                     LIMIT recent) AS f));
END;
$$;
COMMENT ON FUNCTION public.func_jobs_overview(integer) IS
    'The dashboard''s jobs screen in one call, each part read through an index of the live queue (cost independent of the job history): {now, queued, running, running_by_worker: [{worker_id (or "provider <name>" for jobs handed to an external provider), running, job_ids (first 5), since}], awaiting_approval, approvals: [{request_id, job_id, requested_by, job_type, estimated_cost, expires_at}] soonest deadline first, recent_failures: [{job_id, user_id, job_type, provider, attempts, finished_at, error (first line)}] newest first}; recent (1..100) bounds both lists.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY['public.func_jobs_overview(integer)']::regprocedure[]);
