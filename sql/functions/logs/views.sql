-- sql/functions/logs/views.sql
-- Views for the SQL editor. security_invoker: a view reads with its caller's rights, so
-- RLS and the revoked grants apply through it too. Dropped and created again on every
-- re-apply, so a change of columns needs no migration of its own.

-- v_recent_errors and v_worker_log_activity carry the columns the seed's own views had
-- under these names (error_count, last_error_time, unique_messages; status,
-- last_heartbeat, last_log_time), so its scripts and saved queries read them unchanged.
DROP VIEW IF EXISTS public.v_recent_errors;
CREATE VIEW public.v_recent_errors WITH (security_invoker = true) AS
WITH by_message AS (
    -- Messages are told apart by their first 200 characters, as in the errors summary.
    SELECT source_type, source_id, worker_id, left(message, 200) AS message,
           count(*) AS n, min("timestamp") AS first_seen, max("timestamp") AS last_seen
      FROM public.system_logs
     WHERE "timestamp" > now() - interval '24 hours' AND severity_number >= 17
     GROUP BY source_type, source_id, worker_id, left(message, 200)
)
SELECT source_type, source_id, worker_id,
       sum(n)::bigint AS error_count,
       min(first_seen) AS first_error_time,
       max(last_seen) AS last_error_time,
       (array_agg(message ORDER BY n DESC, last_seen DESC, message))[1:20] AS unique_messages,
       count(*) AS distinct_messages
  FROM by_message
 GROUP BY source_type, source_id, worker_id
 ORDER BY error_count DESC, last_error_time DESC;
COMMENT ON VIEW public.v_recent_errors IS 'ERROR and CRITICAL logs of the last 24 hours per source and worker (the seed''s columns): error_count, first_error_time, last_error_time, unique_messages (the 20 most frequent distinct messages, first 200 characters each) and distinct_messages (how many there were). The rows themselves: v_recent_error_logs.';

DROP VIEW IF EXISTS public.v_recent_error_logs;
CREATE VIEW public.v_recent_error_logs WITH (security_invoker = true) AS
SELECT id, "timestamp", source_type, source_id, log_level, logger_name, message,
       task_id, worker_id, cycle_number, correlation_id, exception, metadata
  FROM public.system_logs
 WHERE "timestamp" > now() - interval '24 hours' AND severity_number >= 17
 ORDER BY "timestamp" DESC, id DESC;
COMMENT ON VIEW public.v_recent_error_logs IS 'ERROR and CRITICAL logs of the last 24 hours, one row each, newest first.';

DROP VIEW IF EXISTS public.v_worker_log_activity;
CREATE VIEW public.v_worker_log_activity WITH (security_invoker = true) AS
WITH logged AS (
    SELECT worker_id,
           count(*) AS log_count,
           count(*) FILTER (WHERE severity_number >= 17) AS error_count,
           count(*) FILTER (WHERE severity_number = 13) AS warning_count,
           min("timestamp") AS first_seen,
           max("timestamp") AS last_seen
      FROM public.system_logs
     WHERE "timestamp" > now() - interval '1 hour' AND worker_id IS NOT NULL
     GROUP BY worker_id
), beating AS (
    SELECT worker_id, status, last_heartbeat_at
      FROM public.workers
     WHERE last_heartbeat_at > now() - interval '1 hour'
)
SELECT coalesce(b.worker_id, l.worker_id) AS worker_id,
       b.status,
       b.last_heartbeat_at AS last_heartbeat,
       coalesce(l.log_count, 0) AS log_count,
       coalesce(l.error_count, 0) AS error_count,
       coalesce(l.warning_count, 0) AS warning_count,
       l.first_seen,
       l.last_seen,
       l.last_seen AS last_log_time
  FROM beating b
  FULL JOIN logged l ON l.worker_id = b.worker_id
 ORDER BY l.last_seen DESC NULLS LAST, b.last_heartbeat_at DESC;
COMMENT ON VIEW public.v_worker_log_activity IS 'Per worker that sent a heartbeat or a log in the last hour: status and last_heartbeat (from workers; NULL for a worker that only logged), log, error and warning counts of the hour, first_seen and last_seen (= last_log_time) of its logs.';

DROP VIEW IF EXISTS public.v_error_summary;
CREATE VIEW public.v_error_summary WITH (security_invoker = true) AS
SELECT source_type, source_id, worker_id, log_level,
       count(*) AS error_count,
       min("timestamp") AS first_seen,
       max("timestamp") AS last_seen,
       (array_agg(message ORDER BY "timestamp" DESC))[1] AS latest_message
  FROM public.system_logs
 WHERE "timestamp" > now() - interval '24 hours' AND severity_number >= 17
 GROUP BY source_type, source_id, worker_id, log_level
 ORDER BY error_count DESC, last_seen DESC;
COMMENT ON VIEW public.v_error_summary IS 'ERROR and CRITICAL logs of the last 24 hours grouped by source, worker and level, with the latest message.';

SELECT hub_internal.func_hub_secure(
    p_tables => ARRAY[
        'public.v_recent_errors',
        'public.v_recent_error_logs',
        'public.v_worker_log_activity',
        'public.v_error_summary'
    ]::regclass[]);
