-- sql/functions/logs/views.sql
-- Views for the SQL editor. security_invoker: a view reads with its caller's rights, so
-- RLS and the revoked grants apply through it too. Dropped and created again on every
-- re-apply, so a change of columns needs no migration of its own.

-- Views for the SQL editor. security_invoker: a view reads with its caller's rights,
-- so RLS and the revoked grants apply through it too.
DROP VIEW IF EXISTS public.v_recent_errors;
CREATE VIEW public.v_recent_errors WITH (security_invoker = true) AS
SELECT id, "timestamp", source_type, source_id, log_level, logger_name, message,
       task_id, worker_id, cycle_number, correlation_id, exception, metadata
  FROM public.system_logs
 WHERE "timestamp" > now() - interval '24 hours' AND severity_number >= 17
 ORDER BY "timestamp" DESC, id DESC;
COMMENT ON VIEW public.v_recent_errors IS 'ERROR and CRITICAL logs of the last 24 hours, newest first.';

DROP VIEW IF EXISTS public.v_worker_log_activity;
CREATE VIEW public.v_worker_log_activity WITH (security_invoker = true) AS
SELECT worker_id,
       count(*) AS log_count,
       count(*) FILTER (WHERE severity_number >= 17) AS error_count,
       count(*) FILTER (WHERE severity_number = 13) AS warning_count,
       min("timestamp") AS first_seen,
       max("timestamp") AS last_seen
  FROM public.system_logs
 WHERE "timestamp" > now() - interval '1 hour' AND worker_id IS NOT NULL
 GROUP BY worker_id
 ORDER BY last_seen DESC;
COMMENT ON VIEW public.v_worker_log_activity IS 'Per worker over the last hour: log, error and warning counts, first and last record.';

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
        'public.v_worker_log_activity',
        'public.v_error_summary'
    ]::regclass[]);
