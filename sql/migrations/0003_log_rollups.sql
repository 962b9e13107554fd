-- 0003_log_rollups.sql
-- Count rollups of system_logs, so that aggregates over long windows read thousands of
-- rollup rows instead of millions of log rows, and stay EXACT. Maintained on write by
-- the trigger of sql/functions/logs/rollups.sql, which also explains how a window is
-- read from them.
--   system_log_counts        rows per (resolution, bucket, log_level, source_type,
--                            source_id, worker_id): count, errors (severity >= 17) and
--                            last_seen, at two resolutions: 'minute' and 'hour' (UTC).
--   system_log_error_counts  ERROR/CRITICAL rows per (hour, log_level, source_type,
--                            message fingerprint): count, first_seen, last_seen and the
--                            first message. Per-source and per-worker error counts come
--                            from system_log_counts.errors; keeping workers out of this
--                            key lets an hour's many similar errors share one row.
-- Needs PostgreSQL 15 or later (UNIQUE NULLS NOT DISTINCT: worker_id may be NULL).

CREATE TABLE IF NOT EXISTS public.system_log_counts (
    resolution  text        NOT NULL CHECK (resolution IN ('minute', 'hour')),
    bucket      timestamptz NOT NULL,
    log_level   text        NOT NULL,
    source_type text        NOT NULL,
    source_id   text        NOT NULL,
    worker_id   text,
    count       bigint      NOT NULL,
    errors      bigint      NOT NULL,
    last_seen   timestamptz NOT NULL
) WITH (fillfactor = 70);  -- room for HOT updates: every batch bumps the current buckets
CREATE UNIQUE INDEX IF NOT EXISTS system_log_counts_key
    ON public.system_log_counts (resolution, bucket, log_level, source_type, source_id, worker_id)
    NULLS NOT DISTINCT;
-- The keys with errors (ERROR/CRITICAL levels, a few percent of the rows), for the
-- errors summary: it reads these instead of every key of the window.
CREATE INDEX IF NOT EXISTS system_log_counts_errors
    ON public.system_log_counts (resolution, bucket) WHERE errors > 0;
COMMENT ON TABLE public.system_log_counts IS
    'Rollup of system_logs maintained on write (trigger system_logs_rollup): per UTC minute and per UTC hour (resolution), level, source and worker, the count of rows, of rows with severity >= 17 (errors) and the latest "timestamp". Read by func_log_statistics().';


CREATE TABLE IF NOT EXISTS public.system_log_error_counts (
    bucket      timestamptz NOT NULL,
    log_level   text        NOT NULL,
    source_type text        NOT NULL,
    fingerprint uuid        NOT NULL,
    count       bigint      NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    message     text        NOT NULL,
    PRIMARY KEY (bucket, log_level, source_type, fingerprint)
) WITH (fillfactor = 70);
COMMENT ON TABLE public.system_log_error_counts IS
    'Rollup of the ERROR/CRITICAL rows (severity >= 17) of system_logs maintained on write: per UTC hour, level, source_type and message fingerprint (func_log_message_fingerprint: md5 of the first 200 characters), the count, first and last "timestamp", and the full message of the first row. Read by func_log_errors_summary().';

SELECT hub_internal.func_hub_secure(
    p_tables => ARRAY['public.system_log_counts', 'public.system_log_error_counts']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.system_log_counts');
SELECT hub_internal.func_hub_service_role_policy('public.system_log_error_counts');
