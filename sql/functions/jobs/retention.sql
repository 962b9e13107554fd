-- sql/functions/jobs/retention.sql
-- Retention of the job history: finished jobs (completed, failed, cancelled) older than
-- the retention go, with their queue entry, approval request and events (ON DELETE
-- CASCADE), in bounded batches. A finished job never changes status again (cancel,
-- fail, provider reports all refuse a finished job; a re-run is a new job), so retention
-- cannot race a claim: it never looks at an unfinished job. It takes the queue entries
-- first (the lock order of every job function) with SKIP LOCKED, so it never waits for
-- a worker either. A cancelled job whose copy at a provider may still run stays until
-- the daemon has cancelled it there. Worker rows dead or stopped for as long go too.

CREATE OR REPLACE FUNCTION public.func_prune_jobs(retention_days integer DEFAULT 30, batch_size integer DEFAULT 5000)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_cutoff timestamptz;
    v_jobs integer;
    v_workers integer;
BEGIN
    IF retention_days IS NULL OR retention_days NOT BETWEEN 1 AND 36600 THEN
        RAISE EXCEPTION 'retention_days must be from 1 to 36600, got %', coalesce(retention_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'batch_size must be from 1 to 100000, got %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_cutoff := now() - make_interval(days => retention_days);
    -- Oldest first through job_queue_finished_idx: a finished entry's run_after is when
    -- its job finished (jobs has no index on status or finished_at, so that claims and
    -- completions update its rows in place, 0097); the job's finished_at decides.
    WITH old AS (
        SELECT j.job_id FROM public.job_queue q JOIN public.jobs j ON j.job_id = q.job_id
         WHERE q.status IN ('completed', 'failed', 'cancelled') AND q.run_after < v_cutoff
           AND j.status IN ('completed', 'failed', 'cancelled') AND j.finished_at < v_cutoff
           AND NOT (j.status = 'cancelled' AND j.provider_job_id IS NOT NULL
                    AND j.provider_status IN ('pending', 'uploading', 'queued', 'running'))
         ORDER BY q.run_after
         LIMIT batch_size
    ), locked AS (
        SELECT q.job_id FROM public.job_queue q
         WHERE q.job_id IN (SELECT job_id FROM old)
           AND q.status IN ('completed', 'failed', 'cancelled')
           FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM public.jobs j USING locked l
         WHERE j.job_id = l.job_id AND j.status IN ('completed', 'failed', 'cancelled')
        RETURNING j.job_id
    )
    SELECT count(*) INTO v_jobs FROM gone;
    DELETE FROM public.workers w
     WHERE w.status IN ('dead', 'stopped') AND w.last_heartbeat_at < v_cutoff;
    GET DIAGNOSTICS v_workers = ROW_COUNT;
    RETURN jsonb_build_object('deleted_jobs', v_jobs, 'deleted_workers', v_workers,
                              'more', v_jobs >= batch_size, 'cutoff', v_cutoff,
                              'retention_days', retention_days);
END;
$$;
COMMENT ON FUNCTION public.func_prune_jobs(integer, integer) IS
    'Deletes up to batch_size finished jobs (completed, failed, cancelled) that finished more than retention_days ago, with their queue entries, approval requests and events, oldest first; never an unfinished job, never one still to be cancelled at its provider; skips rows another transaction holds. Also deletes worker rows dead or stopped for retention_days. Returns {deleted_jobs, deleted_workers, more, cutoff, retention_days}: call again while more is true.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY['public.func_prune_jobs(integer, integer)']::regprocedure[]);
