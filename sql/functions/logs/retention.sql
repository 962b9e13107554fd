-- sql/functions/logs/retention.sql
-- Retention of the log store: whole daily partitions dropped (cost independent of the
-- row count), scheduled by pg_cron where it is installed, else run by the daemon.

-- Retention by whole partitions: every daily partition whose day ended more than
-- retention_hours ago is dropped (cost independent of its row count); rows of the
-- DEFAULT partition older than the cut-off are deleted row by row (it holds only the
-- stragglers maintenance has not placed yet). "deleted" counts the deleted rows plus
-- the planner's row estimate for each dropped partition (counting them exactly would
-- cost as much as the DELETE this design avoids). A partition whose lock cannot be had
-- within 100 ms (a long query is reading it) is skipped and listed; the next run drops
-- it. The wait is short because writers queue behind a waiting DROP (it needs
-- system_logs itself), and after the first DROP this transaction holds system_logs
-- until it ends: inserts are held up by at most 100 ms per partition to drop.
-- The counts of what it removes are forgotten too: a dropped day's partition takes the rollup rows of that day with it (the
-- DROP locks system_logs, so no writer counts into that day meanwhile), and rows deleted
-- from the DEFAULT partition have their hours recounted by func_log_rollups_rebuild
-- (exact also for the hour that straddles the cut-off).
CREATE OR REPLACE FUNCTION public.func_cleanup_old_logs(retention_hours integer DEFAULT 48)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_cutoff timestamptz;
    v_part record;
    v_dropped text[] := '{}';
    v_skipped text[] := '{}';
    v_estimated bigint := 0;
    v_deleted bigint;
    v_oldest timestamptz;
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    IF retention_hours IS NULL OR retention_hours < 1 THEN
        RAISE EXCEPTION 'retention_hours must be at least 1, got %', coalesce(retention_hours::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The default keeps 48 hours: SELECT func_cleanup_old_logs(48);';
    END IF;
    v_cutoff := now() - make_interval(hours => retention_hours);
    PERFORM pg_advisory_xact_lock(hashtext('orchestrator_hub.system_logs.partitions'));
    PERFORM set_config('lock_timeout', '100ms', true);

    FOR v_part IN
        SELECT c.oid::regclass AS rel, c.relname, greatest(c.reltuples, 0)::bigint AS estimate,
               (to_date(substr(c.relname, 14), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' AS upper_bound
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'public.system_logs'::regclass
           AND c.relname ~ '^system_logs_p\d{8}$'
         ORDER BY c.relname
    LOOP
        CONTINUE WHEN v_part.upper_bound > v_cutoff;
        BEGIN
            EXECUTE format('DROP TABLE %s', v_part.rel);
            DELETE FROM public.system_log_counts
             WHERE bucket >= v_part.upper_bound - interval '1 day' AND bucket < v_part.upper_bound;
            DELETE FROM public.system_log_error_counts
             WHERE bucket >= v_part.upper_bound - interval '1 day' AND bucket < v_part.upper_bound;
            v_dropped := v_dropped || v_part.relname::text;
            v_estimated := v_estimated + v_part.estimate;
        EXCEPTION WHEN lock_not_available THEN
            v_skipped := v_skipped || v_part.relname::text;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);

    WITH gone AS (
        DELETE FROM public.system_logs_default WHERE "timestamp" < v_cutoff RETURNING "timestamp"
    )
    SELECT count(*), min("timestamp") INTO v_deleted, v_oldest FROM gone;
    IF v_deleted > 0 THEN
        PERFORM hub_internal.func_log_rollups_rebuild(v_oldest, v_cutoff);
    END IF;
    -- The idempotency registry of server-timed entries goes with the logs it stands for.
    DELETE FROM public.system_log_server_timed_ids WHERE "timestamp" < v_cutoff;

    RETURN jsonb_build_object(
        'success', true,
        'deleted', v_deleted + v_estimated,
        'deleted_from_default', v_deleted,
        'dropped_partitions', to_jsonb(v_dropped),
        'skipped_partitions', to_jsonb(v_skipped),
        'retention_hours', retention_hours,
        'cutoff', v_cutoff);
END;
$$;
COMMENT ON FUNCTION public.func_cleanup_old_logs(integer) IS
    'Removes logs older than retention_hours (default 48, at least 1) by dropping whole daily partitions, and their counts from the rollups. Returns {success, deleted, dropped_partitions, retention_hours, ...}; "deleted" uses the planner''s estimate for dropped partitions.';

-- Schedules retention (daily 03:00 UTC, 48 h) and partition maintenance (hourly) with
-- pg_cron where it is installed; elsewhere the orchestrator daemon runs both. Call it
-- again after enabling pg_cron (Supabase: Database > Extensions); cron.schedule() with
-- a job name replaces the job of that name, so repeated calls are harmless.
CREATE OR REPLACE FUNCTION public.func_schedule_log_maintenance(retention_hours integer DEFAULT 48)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF retention_hours IS NULL OR retention_hours < 1 THEN
        RAISE EXCEPTION 'retention_hours must be at least 1, got %', coalesce(retention_hours::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN jsonb_build_object('success', true, 'scheduled', false,
            'reason', 'pg_cron is not installed; the orchestrator daemon runs retention and partition maintenance');
    END IF;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
        USING 'orchestrator-log-retention', '0 3 * * *',
              format('SELECT public.func_cleanup_old_logs(%s)', retention_hours);
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
        USING 'orchestrator-log-partitions', '7 * * * *', 'SELECT public.func_maintain_log_partitions()';
    RETURN jsonb_build_object('success', true, 'scheduled', true, 'retention_hours', retention_hours);
END;
$$;
COMMENT ON FUNCTION public.func_schedule_log_maintenance(integer) IS
    'With pg_cron installed, schedules func_cleanup_old_logs(retention_hours) daily at 03:00 and func_maintain_log_partitions() hourly; otherwise reports that the daemon does it. Idempotent.';

-- Whether pg_cron runs the log maintenance (func_schedule_log_maintenance above
-- schedules the jobs named below); when it does not, the daemon runs it hourly.
CREATE OR REPLACE FUNCTION public.func_log_maintenance_by_cron()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_jobs integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN jsonb_build_object('scheduled', false, 'reason', 'pg_cron is not installed');
    END IF;
    BEGIN
        EXECUTE 'SELECT count(*) FROM cron.job WHERE jobname IN '
                '(''orchestrator-log-retention'', ''orchestrator-log-partitions'') AND active'
           INTO v_jobs;
    EXCEPTION WHEN insufficient_privilege OR undefined_table OR undefined_column THEN
        RETURN jsonb_build_object('scheduled', false, 'reason', 'cannot read cron.job: ' || SQLERRM);
    END;
    RETURN jsonb_build_object('scheduled', v_jobs = 2,
        'reason', CASE WHEN v_jobs = 2 THEN 'pg_cron runs both jobs'
                       ELSE 'pg_cron is installed but the jobs are not scheduled; run SELECT func_schedule_log_maintenance()' END);
END;
$$;
COMMENT ON FUNCTION public.func_log_maintenance_by_cron() IS
    'Whether pg_cron runs the log retention and partition jobs (orchestrator-log-retention, orchestrator-log-partitions). Returns {scheduled, reason}; the daemon runs the maintenance itself when scheduled is false.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_cleanup_old_logs(integer)',
        'public.func_schedule_log_maintenance(integer)',
        'public.func_log_maintenance_by_cron()'
    ]::regprocedure[]);

-- With pg_cron installed, schedule the maintenance jobs once (a later re-apply of this
-- file leaves a schedule alone, retention chosen by hand included).
SELECT public.func_schedule_log_maintenance()
 WHERE NOT (public.func_log_maintenance_by_cron() ->> 'scheduled')::boolean;
