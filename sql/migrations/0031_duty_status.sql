-- 0031_duty_status.sql
-- What each daemon duty did last, cluster-wide (sql/functions/daemon/duty_status.sql):
-- written by whichever daemon ran the duty, read by every `orchestrator serve` health
-- check and metrics scrape, so an API-only instance sees a duty go stale when the daemon
-- that held it died. The seed's readiness checked only the database, never the loops.

CREATE TABLE IF NOT EXISTS public.daemon_duty_status (
    duty                 text             PRIMARY KEY CHECK (duty <> '' AND length(duty) <= 100),
    last_holder          text             NOT NULL,
    last_finished_at     timestamptz      NOT NULL,
    last_succeeded_at    timestamptz,
    last_failed_at       timestamptz,
    last_error           text,
    consecutive_failures integer          NOT NULL DEFAULT 0,
    runs_total           bigint           NOT NULL DEFAULT 0,
    failures_total       bigint           NOT NULL DEFAULT 0,
    last_duration_ms     double precision,
    interval_seconds     double precision
) WITH (fillfactor = 70);  -- every run updates its row: room for HOT updates
COMMENT ON TABLE public.daemon_duty_status IS
    'One row per daemon duty: the last run''s holder and outcome, last success and failure, consecutive failures and totals. Written by func_record_duty_run() after every run; read by func_duty_status().';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.daemon_duty_status']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.daemon_duty_status');
