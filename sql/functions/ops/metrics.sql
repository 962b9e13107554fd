-- sql/functions/ops/metrics.sql
-- Every database-derived metric of a Prometheus scrape in ONE call (one round trip, one
-- transaction), for the categories asked. Each part reads something small whatever the
-- history holds: job counts from the job_status_totals counters and the events not yet
-- folded into them (not the jobs table; the call folds, so it writes: not STABLE),
-- the queue through the claim's partial index, log counts from the minute rollups, audit
-- counts from audit_event_counts, duties from daemon_duty_status.

CREATE OR REPLACE FUNCTION public.func_ops_metrics(categories jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_all text[] := ARRAY['jobs', 'provider', 'health', 'approvals', 'audit', 'logs'];
    v_want text[] := CASE WHEN jsonb_typeof(categories) = 'array'
                          THEN ARRAY(SELECT jsonb_array_elements_text(categories)) ELSE v_all END;
    v_out jsonb := jsonb_build_object('now', extract(epoch FROM clock_timestamp())::double precision);
    v_minute timestamptz := date_trunc('minute', clock_timestamp());
BEGIN
    IF v_want && ARRAY['jobs', 'provider'] THEN
        -- Fold the job counters unless another scrape is folding right now; the read
        -- below takes the totals, the position and the events after it in one snapshot
        -- either way, so it is exact.
        IF pg_try_advisory_xact_lock(x'6875625f666f6c64'::bigint) THEN  -- 'hub_fold'
            PERFORM public.func_fold_job_counters();
        END IF;
        WITH t AS (
            SELECT provider, from_status, to_status, sum(transitions) AS n, sum(run_seconds) AS run_seconds,
                   sum(run_count) AS run_count, sum(estimated_cost) AS cost
              FROM (SELECT provider, from_status, to_status, transitions, run_seconds, run_count, estimated_cost
                      FROM public.job_status_totals
                    UNION ALL  -- the events not folded yet (those of running transactions, or all
                               -- since the last fold when another scrape is folding)
                    SELECT c.provider, c.from_status, c.to_status, c.transitions, c.run_seconds, c.run_count,
                           c.estimated_cost
                      FROM public.job_status_fold f,
                           hub_internal.func_job_status_counts(f.tx, f.event_id, f.baseline, NULL, NULL) c) c
             GROUP BY 1, 2, 3
        ), per_status AS (  -- jobs now in each status, per provider: in minus out
            SELECT provider, status, sum(n) AS n, sum(cost) AS cost FROM (
                SELECT provider, to_status AS status, n, cost FROM t
                UNION ALL
                SELECT provider, from_status, -n, -cost FROM t WHERE from_status <> ''
            ) x GROUP BY 1, 2
        )
        SELECT v_out || jsonb_build_object(
            'jobs_by_status', (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
                                 FROM (SELECT status, sum(n) AS n FROM per_status GROUP BY 1) s),
            'jobs_submitted', (SELECT coalesce(sum(n), 0) FROM t WHERE from_status = ''),
            'jobs_finished', (SELECT coalesce(jsonb_object_agg(to_status, jsonb_build_object(
                                  'n', n, 'run_seconds', run_seconds, 'run_count', run_count)), '{}'::jsonb)
                                FROM (SELECT to_status, sum(n) AS n, sum(run_seconds) AS run_seconds,
                                             sum(run_count) AS run_count
                                        FROM t WHERE to_status IN ('completed', 'failed', 'cancelled')
                                       GROUP BY 1) f),
            'completed_cost_by_provider', (SELECT coalesce(jsonb_object_agg(provider, cost), '{}'::jsonb)
                                             FROM (SELECT provider, sum(cost) AS cost FROM t
                                                    WHERE to_status = 'completed' GROUP BY 1) c),
            'active_by_provider', (SELECT coalesce(jsonb_object_agg(provider, jsonb_build_object('jobs', n, 'cost', cost)), '{}'::jsonb)
                                     FROM (SELECT provider, sum(n) AS n, sum(cost) AS cost FROM per_status
                                            WHERE status IN ('queued', 'running') GROUP BY 1) a),
            'queue', (SELECT jsonb_build_object(
                          'depth', count(*),
                          'oldest_wait_seconds', coalesce(extract(epoch FROM clock_timestamp() - min(q.enqueued_at)), 0))
                        FROM public.job_queue q WHERE q.status = 'queued'))
          INTO v_out;
    END IF;
    IF 'health' = ANY (v_want) THEN
        v_out := v_out || jsonb_build_object('duties', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'duty', s.duty, 'last_success', extract(epoch FROM s.last_succeeded_at)::double precision,
                       'runs_total', s.runs_total, 'failures_total', s.failures_total,
                       'consecutive_failures', s.consecutive_failures) ORDER BY s.duty), '[]'::jsonb)
              FROM public.daemon_duty_status s));
    END IF;
    IF 'approvals' = ANY (v_want) THEN
        v_out := v_out || jsonb_build_object(
            'approvals_pending', (SELECT count(*) FROM public.approval_requests r WHERE r.status = 'pending'),
            'approvals_by_status', (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
                                      FROM (SELECT r.status, count(*) AS n FROM public.approval_requests r GROUP BY 1) a));
    END IF;
    IF 'audit' = ANY (v_want) THEN
        v_out := v_out || jsonb_build_object('audit_events', (
            SELECT coalesce(jsonb_object_agg(c.event_type, c.n), '{}'::jsonb) FROM public.audit_event_counts c));
    END IF;
    IF 'logs' = ANY (v_want) THEN
        -- The last complete minute, and the last 60 complete minutes, by level.
        v_out := v_out || jsonb_build_object(
            'logs_last_minute', (SELECT coalesce(jsonb_object_agg(log_level, n), '{}'::jsonb)
                                   FROM (SELECT c.log_level, sum(c.count) AS n FROM public.system_log_counts c
                                          WHERE c.resolution = 'minute' AND c.bucket = v_minute - interval '1 minute'
                                          GROUP BY 1) m),
            'logs_last_hour', (SELECT coalesce(jsonb_object_agg(log_level, n), '{}'::jsonb)
                                 FROM (SELECT c.log_level, sum(c.count) AS n FROM public.system_log_counts c
                                        WHERE c.resolution = 'minute' AND c.bucket >= v_minute - interval '60 minutes'
                                          AND c.bucket < v_minute
                                        GROUP BY 1) h));
    END IF;
    RETURN v_out;
END;
$$;
COMMENT ON FUNCTION public.func_ops_metrics(jsonb) IS
    'The database-derived Prometheus metrics for the given categories (a JSON array of: jobs, provider, health, approvals, audit, logs; NULL = all) in one call: jobs by status, submitted and finished totals, run time and estimated cost (from job_status_totals), queue depth and oldest wait, duty runs, approvals, audit event counts, log rows of the last minute and hour by level.';

SELECT hub_internal.func_hub_secure(p_functions => ARRAY['public.func_ops_metrics(jsonb)']::regprocedure[]);
