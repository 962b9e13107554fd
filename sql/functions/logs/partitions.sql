-- sql/functions/logs/partitions.sql
-- Daily partitions of system_logs (sql/migrations/0002): created ahead of time, with the
-- rows of a day that had none moved out of the DEFAULT partition. Run hourly by pg_cron
-- (func_schedule_log_maintenance) or the daemon; also once below, so a fresh database
-- starts with today's partitions.

-- Creates the daily partitions from days_behind before today to days_ahead after it
-- (UTC), moving any rows the DEFAULT partition holds for those days into them. Safe to
-- run concurrently (an advisory lock serialises it) and as often as you like.
-- SECURITY DEFINER because service_role, which runs it from the daemon, does not own
-- the table; the search_path is fixed.
CREATE OR REPLACE FUNCTION public.func_maintain_log_partitions(
    days_ahead integer DEFAULT 3,
    days_behind integer DEFAULT 1
) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_day date;
    v_name text;
    v_from timestamptz;
    v_to timestamptz;
    v_moved bigint;
    v_moved_total bigint := 0;
    v_created text[] := '{}';
BEGIN
    IF days_ahead IS NULL OR days_ahead NOT BETWEEN 0 AND 366 THEN
        RAISE EXCEPTION 'days_ahead must be between 0 and 366, got %', days_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF days_behind IS NULL OR days_behind NOT BETWEEN 0 AND 366 THEN
        RAISE EXCEPTION 'days_behind must be between 0 and 366, got %', days_behind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('orchestrator_hub.system_logs.partitions'));

    FOR v_day IN
        SELECT d::date FROM generate_series(v_today - days_behind, v_today + days_ahead, interval '1 day') AS d
    LOOP
        v_name := 'system_logs_p' || to_char(v_day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(format('public.%I', v_name)) IS NOT NULL;
        v_from := v_day::timestamp AT TIME ZONE 'UTC';
        v_to := (v_day + 1)::timestamp AT TIME ZONE 'UTC';
        -- Build the day standalone, move its rows out of the default partition, then
        -- attach: ATTACH takes a weaker lock on the parent than CREATE ... PARTITION OF,
        -- so concurrent inserts into other days are not blocked.
        EXECUTE format('CREATE TABLE public.%I (LIKE public.system_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
        EXECUTE format(
            'WITH moved AS (DELETE FROM public.system_logs_default WHERE "timestamp" >= $1 AND "timestamp" < $2 RETURNING *) '
            'INSERT INTO public.%I SELECT * FROM moved', v_name)
            USING v_from, v_to;
        GET DIAGNOSTICS v_moved = ROW_COUNT;
        v_moved_total := v_moved_total + v_moved;
        EXECUTE format('ALTER TABLE public.system_logs ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_from, v_to);
        PERFORM hub_internal.func_hub_secure(p_tables => ARRAY[format('public.%I', v_name)::regclass]);
        v_created := v_created || v_name;
    END LOOP;

    RETURN jsonb_build_object('success', true, 'created', to_jsonb(v_created),
                              'moved_from_default', v_moved_total);
END;
$$;
COMMENT ON FUNCTION public.func_maintain_log_partitions(integer, integer) IS
    'Creates the daily partitions of system_logs from days_behind before to days_ahead after today (UTC) and moves rows out of the default partition into them. Returns {success, created, moved_from_default}. Idempotent; run it hourly (pg_cron or the daemon).';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_maintain_log_partitions(integer, integer)'
    ]::regprocedure[]);

-- Today's partitions (and the coming days') from the first migration on; the daemon or
-- pg_cron keeps creating them from then on.
SELECT public.func_maintain_log_partitions();
