-- sql/functions/logs/dashboard.sql
-- The header of the live dashboard (`orchestrator dashboard`) in one call.
-- The seed's dashboard re-read the whole last hour every 5 s and counted on the client.
-- Here the database counts, over short windows only, so one refresh stays cheap at
-- 10 million rows:
--   * rates: the last 5 minutes, read through the primary key ("timestamp", id); the
--     time bounds prune every other daily partition;
--   * errors per minute: the last window_minutes, read through the partial index
--     system_logs_errors_time_idx (severity_number >= 17), which holds errors only;
--   * active workers: the workers table is small and indexed on last_heartbeat_at;
--   * queue depth: func_queue_depth() (jobs/reads.sql), which counts the claim's partial
--     index, so its cost follows the queue, not the job history.

-- Parameters have no p_ prefix: they are the RPC's public argument names (supabase-py's
-- rpc() and PostgREST pass them by name); "#variable_conflict use_column" makes every
-- unqualified name in SQL a column. Not marked STABLE: a STABLE function runs its
-- queries read-only, and the queue depth it reads through EXECUTE is another file's
-- function, whose volatility is not this one's to assume.
CREATE OR REPLACE FUNCTION public.func_log_dashboard_summary(
    window_minutes integer DEFAULT 60,
    source_type text DEFAULT NULL,
    worker_id text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_window integer := func_log_dashboard_summary.window_minutes;
    v_source text := nullif(func_log_dashboard_summary.source_type, '');
    v_worker text := nullif(func_log_dashboard_summary.worker_id, '');
    v_now timestamptz := now();
    v_recent_from timestamptz := now() - interval '5 minutes';
    -- Buckets are whole minutes; the last one is the current, partial minute.
    v_series_from timestamptz;
    v_total bigint;
    v_errors bigint;
    v_log_workers text[];
    v_active integer;
    v_series jsonb;
    v_queue integer;
    v_queue_error text;
BEGIN
    IF v_window IS NULL OR v_window NOT BETWEEN 1 AND 1440 THEN
        RAISE EXCEPTION 'window_minutes must be between 1 and 1440, got %',
                        coalesce(v_window::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_series_from := date_trunc('minute', v_now) - make_interval(mins => v_window - 1);

    SELECT count(*),
           count(*) FILTER (WHERE l.severity_number >= 17),
           array_agg(DISTINCT l.worker_id) FILTER (WHERE l.worker_id IS NOT NULL)
      INTO v_total, v_errors, v_log_workers
      FROM public.system_logs AS l
     WHERE l."timestamp" > v_recent_from AND l."timestamp" <= v_now
       AND (v_source IS NULL OR l.source_type = v_source)
       AND (v_worker IS NULL OR l.worker_id = v_worker);

    -- A worker is active when it logged or sent a heartbeat in the last 5 minutes.
    -- Heartbeats stand for workers, so they count unless the filter names another
    -- source type.
    SELECT count(*) INTO v_active
      FROM (SELECT unnest(v_log_workers)
            UNION
            SELECT w.worker_id
              FROM public.workers AS w
             WHERE w.last_heartbeat_at > v_recent_from
               AND (v_source IS NULL OR v_source = 'worker')
               AND (v_worker IS NULL OR w.worker_id = v_worker)) AS active;

    SELECT jsonb_agg(coalesce(per_minute.n, 0) ORDER BY bucket.i)
      INTO v_series
      FROM generate_series(0, v_window - 1) AS bucket(i)
      LEFT JOIN (
          SELECT floor(extract(epoch FROM l."timestamp" - v_series_from) / 60)::integer AS i,
                 count(*) AS n
            FROM public.system_logs AS l
           WHERE l.severity_number >= 17
             AND l."timestamp" >= v_series_from
             AND l."timestamp" < date_trunc('minute', v_now) + interval '1 minute'
             AND (v_source IS NULL OR l.source_type = v_source)
             AND (v_worker IS NULL OR l.worker_id = v_worker)
           GROUP BY 1
      ) AS per_minute ON per_minute.i = bucket.i;

    IF to_regprocedure('public.func_queue_depth()') IS NOT NULL THEN
        -- A broken or forbidden queue function must not take the log header down with
        -- it: its error is reported next to a null depth. Called through EXECUTE so a
        -- database without it (dropped, or restored without the job tables) still
        -- gets its log numbers.
        BEGIN
            EXECUTE 'SELECT public.func_queue_depth()' INTO v_queue;
            v_queue := coalesce(v_queue, 0);
        EXCEPTION WHEN OTHERS THEN
            v_queue := NULL;
            v_queue_error := SQLERRM;
        END;
    END IF;

    RETURN jsonb_build_object(
        'now', v_now,
        'window_minutes', v_window,
        'logs_per_minute', round(v_total / 5.0, 1),
        'error_rate', CASE WHEN v_total = 0 THEN 0 ELSE round(v_errors::numeric / v_total, 4) END,
        'active_workers', v_active,
        'errors_per_minute', v_series,
        'queue_depth', v_queue)
        || CASE WHEN v_queue_error IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('queue_error', v_queue_error) END;
END;
$$;
COMMENT ON FUNCTION public.func_log_dashboard_summary(integer, text, text) IS
    'The live dashboard''s header, computed by the database over short windows: {now, window_minutes, logs_per_minute (last 5 min), error_rate (errors/total over the last 5 min, 0 when none), active_workers (distinct worker_id with a log or a heartbeat in the last 5 min), errors_per_minute (window_minutes counts, oldest first, one per whole minute, the last being the current minute), queue_depth (queued jobs from func_queue_depth(), null when that function does not exist), queue_error (only when that call failed)}. source_type and worker_id narrow every count (NULL = all). Raises invalid_parameter_value unless 1 <= window_minutes <= 1440.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_log_dashboard_summary(integer, text, text)'
    ]::regprocedure[]);
