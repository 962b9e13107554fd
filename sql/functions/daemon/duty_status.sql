-- sql/functions/daemon/duty_status.sql
-- Each duty's last run, cluster-wide (table in sql/migrations/0031): the daemon that ran
-- a duty records the outcome once per run; every `orchestrator serve` reads it for health
-- and metrics, with the database's clock, so instances on different hosts agree on how
-- old a success is.

CREATE OR REPLACE FUNCTION public.func_record_duty_run(
    duty text, holder text, ok boolean, error text DEFAULT NULL,
    duration_ms double precision DEFAULT NULL, interval_seconds double precision DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_duty text := btrim(duty);
    v_now timestamptz := clock_timestamp();
    v_row public.daemon_duty_status%ROWTYPE;
BEGIN
    IF v_duty IS NULL OR v_duty = '' OR length(v_duty) > 100 OR holder IS NULL OR btrim(holder) = '' THEN
        RAISE EXCEPTION 'duty (1-100 characters) and holder must be non-empty text'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ok IS NULL THEN
        RAISE EXCEPTION 'ok must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.daemon_duty_status AS s (
        duty, last_holder, last_finished_at, last_succeeded_at, last_failed_at, last_error,
        consecutive_failures, runs_total, failures_total, last_duration_ms, interval_seconds)
    VALUES (v_duty, left(holder, 300), v_now, CASE WHEN ok THEN v_now END, CASE WHEN NOT ok THEN v_now END,
            CASE WHEN NOT ok THEN left(error, 2000) END, CASE WHEN ok THEN 0 ELSE 1 END, 1,
            CASE WHEN ok THEN 0 ELSE 1 END, duration_ms, interval_seconds)
    ON CONFLICT ON CONSTRAINT daemon_duty_status_pkey DO UPDATE SET
        last_holder = EXCLUDED.last_holder,
        last_finished_at = v_now,
        last_succeeded_at = CASE WHEN ok THEN v_now ELSE s.last_succeeded_at END,
        last_failed_at = CASE WHEN ok THEN s.last_failed_at ELSE v_now END,
        last_error = CASE WHEN ok THEN s.last_error ELSE EXCLUDED.last_error END,
        consecutive_failures = CASE WHEN ok THEN 0 ELSE s.consecutive_failures + 1 END,
        runs_total = s.runs_total + 1,
        failures_total = s.failures_total + CASE WHEN ok THEN 0 ELSE 1 END,
        last_duration_ms = EXCLUDED.last_duration_ms,
        interval_seconds = coalesce(EXCLUDED.interval_seconds, s.interval_seconds)
    RETURNING s.* INTO v_row;
    RETURN jsonb_build_object('duty', v_row.duty, 'consecutive_failures', v_row.consecutive_failures,
                              'runs_total', v_row.runs_total);
END;
$$;
COMMENT ON FUNCTION public.func_record_duty_run(text, text, boolean, text, double precision, double precision) IS
    'Records one run of a daemon duty by holder: ok or failed (with its error), duration and the duty''s interval. One upsert. Returns {duty, consecutive_failures, runs_total}.';

CREATE OR REPLACE FUNCTION public.func_duty_status()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'now', clock_timestamp(),
        'duties', coalesce(jsonb_agg(jsonb_build_object(
            'duty', s.duty, 'last_holder', s.last_holder, 'last_finished_at', s.last_finished_at,
            'last_succeeded_at', s.last_succeeded_at, 'last_failed_at', s.last_failed_at,
            'last_error', s.last_error, 'consecutive_failures', s.consecutive_failures,
            'runs_total', s.runs_total, 'failures_total', s.failures_total,
            'last_duration_ms', s.last_duration_ms, 'interval_seconds', s.interval_seconds,
            'seconds_since_success', extract(epoch FROM clock_timestamp() - s.last_succeeded_at)::double precision,
            'lease_holder', l.holder, 'lease_expires_at', l.expires_at) ORDER BY s.duty), '[]'::jsonb))
      FROM public.daemon_duty_status s
      LEFT JOIN public.daemon_leases l ON l.duty = s.duty AND l.expires_at > clock_timestamp()
$$;
COMMENT ON FUNCTION public.func_duty_status() IS
    'Every daemon duty''s last run as the database sees it now: holder, last success and failure, last error, consecutive failures, totals, interval, seconds since the last success, and the current lease holder. Returns {now, duties: [...]}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_record_duty_run(text, text, boolean, text, double precision, double precision)',
        'public.func_duty_status()'
    ]::regprocedure[]);
