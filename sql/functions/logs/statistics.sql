-- sql/functions/logs/statistics.sql
-- Aggregates over a time window, computed in the database from the rollups
-- (logs/rollups.sql), so clients never count truncated rows themselves: statistics by
-- level, source and worker, and the errors summary.

-- Statistics over [since, until), exact for any window, from func_log_counts.
CREATE OR REPLACE FUNCTION public.func_log_statistics(
    since timestamptz DEFAULT now() - interval '24 hours',
    until timestamptz DEFAULT now()
) RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH grouped AS (
        SELECT GROUPING(log_level) AS g_level,
               GROUPING(source_type, source_id) AS g_source,
               GROUPING(worker_id) AS g_worker,
               log_level, source_type, source_id, worker_id,
               sum(count)::bigint AS n, sum(errors)::bigint AS errors, max(last_seen) AS last_seen
          FROM hub_internal.func_log_counts(since, until)
         GROUP BY GROUPING SETS ((log_level), (source_type, source_id), (worker_id), ())
    )
    SELECT jsonb_build_object(
        'since', since,
        'until', until,
        'total', coalesce((SELECT n FROM grouped WHERE g_level = 1 AND g_source = 3 AND g_worker = 1), 0),
        'errors', coalesce((SELECT errors FROM grouped WHERE g_level = 1 AND g_source = 3 AND g_worker = 1), 0),
        'by_level', coalesce((SELECT jsonb_object_agg(log_level, n) FROM grouped WHERE g_level = 0), '{}'::jsonb),
        'by_source', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'source_type', source_type, 'source_id', source_id, 'count', n, 'errors', errors,
                'last_seen', last_seen) ORDER BY n DESC, source_type, source_id)
            FROM grouped WHERE g_source = 0), '[]'::jsonb),
        'by_worker', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'worker_id', worker_id, 'count', n, 'errors', errors, 'last_seen', last_seen)
                ORDER BY n DESC, worker_id)
            FROM grouped WHERE g_worker = 0 AND worker_id IS NOT NULL), '[]'::jsonb))
$$;
COMMENT ON FUNCTION public.func_log_statistics(timestamptz, timestamptz) IS
    'Counts of logs in [since, until) (default: the last 24 hours) by level, by source and by worker, with error counts and last-seen times. Exact for any window, read through func_log_counts (rollups for whole minutes and hours, rows for the partial edge minutes). Returns {since, until, total, errors, by_level, by_source, by_worker}.';

-- The statement of the errors summary, read from the rollups: totals by level,
-- source and worker from func_log_counts (errors > 0), top messages from the message
-- rollup for whole hours and from the rows (errors partial index) for the partial hours
-- at both edges, or for the whole window when one worker is asked for (the message
-- rollup has no worker). func_log_errors_summary runs this text with
-- EXECUTE ... USING $1 since, $2 until, $3 source_type, $4 worker_id, $5 top.
CREATE OR REPLACE FUNCTION hub_internal.func_log_errors_summary_statement(
    source_type text DEFAULT NULL,
    worker_id text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN format($q$
        WITH bounds AS MATERIALIZED (
            SELECT CASE WHEN b.h1 < b.h2 %1$s THEN b.h1 ELSE $2 END AS h1,
                   CASE WHEN b.h1 < b.h2 %1$s THEN b.h2 ELSE $2 END AS h2
              FROM (SELECT date_trunc('hour', $1 - interval '1 microsecond', 'UTC')
                           + interval '1 hour' AS h1,
                           date_trunc('hour', $2, 'UTC') AS h2) AS b
        ), grouped AS MATERIALIZED (
            -- One bit per column, set when the row is not grouped by it: level 7,
            -- source 9, worker 14, total 15.
            SELECT GROUPING(log_level, source_type, source_id, worker_id) AS g,
                   log_level, source_type, source_id, worker_id, sum(errors)::bigint AS n
              FROM hub_internal.func_log_counts($1, $2, $3, $4, only_errors => true)
             GROUP BY GROUPING SETS ((log_level), (source_type, source_id), (worker_id), ())
        ), pieces AS (
            SELECT e.log_level, e.source_type, e.fingerprint, e.count AS n, e.first_seen,
                   e.last_seen, e.message, e.cause, e.cause_seen
              FROM public.system_log_error_counts e
             WHERE e.bucket >= (SELECT h1 FROM bounds) AND e.bucket < (SELECT h2 FROM bounds) %2$s
            UNION ALL
            SELECT s.log_level, s.source_type, hub_internal.func_log_message_fingerprint(s.message),
                   count(*), min(s."timestamp"), max(s."timestamp"),
                   (array_agg(s.message ORDER BY s."timestamp", s.id))[1],
                   (array_agg(hub_internal.func_log_exception_cause(s.exception)
                              ORDER BY s."timestamp" DESC, s.id DESC)
                        FILTER (WHERE hub_internal.func_log_exception_cause(s.exception) IS NOT NULL))[1],
                   max(s."timestamp")
                       FILTER (WHERE hub_internal.func_log_exception_cause(s.exception) IS NOT NULL)
              FROM public.system_logs s
             WHERE s."timestamp" >= $1 AND s."timestamp" < $2
               AND s."timestamp" < (SELECT h1 FROM bounds)
               AND s.severity_number >= 17 %3$s %4$s
             GROUP BY 1, 2, 3
            UNION ALL
            SELECT s.log_level, s.source_type, hub_internal.func_log_message_fingerprint(s.message),
                   count(*), min(s."timestamp"), max(s."timestamp"),
                   (array_agg(s.message ORDER BY s."timestamp", s.id))[1],
                   (array_agg(hub_internal.func_log_exception_cause(s.exception)
                              ORDER BY s."timestamp" DESC, s.id DESC)
                        FILTER (WHERE hub_internal.func_log_exception_cause(s.exception) IS NOT NULL))[1],
                   max(s."timestamp")
                       FILTER (WHERE hub_internal.func_log_exception_cause(s.exception) IS NOT NULL)
              FROM public.system_logs s
             WHERE s."timestamp" >= $1 AND s."timestamp" < $2
               AND s."timestamp" >= (SELECT h2 FROM bounds)
               AND s.severity_number >= 17 %3$s %4$s
             GROUP BY 1, 2, 3
        ), pieces_c AS MATERIALIZED (
            SELECT log_level COLLATE "C" AS log_level, source_type COLLATE "C" AS source_type,
                   fingerprint, n, first_seen, last_seen, message, cause, cause_seen
              FROM pieces
        ), groups AS (
            -- the cause of a group is the most recent one of its pieces
            SELECT log_level, source_type, fingerprint, sum(n)::bigint AS n,
                   min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                   (array_agg(cause ORDER BY cause_seen DESC) FILTER (WHERE cause IS NOT NULL))[1] AS cause
              FROM pieces_c
             GROUP BY 1, 2, 3
        ), messages AS MATERIALIZED (
            -- the message of a group is that of its earliest piece (pieces never share
            -- a first_seen: they are disjoint in time)
            SELECT g.log_level, g.source_type, g.fingerprint, g.n, g.first_seen, g.last_seen,
                   p.message, g.cause
              FROM groups g
              JOIN pieces_c p USING (log_level, source_type, fingerprint, first_seen)
        )
        SELECT jsonb_build_object(
            'since', $1,
            'until', $2,
            'total', coalesce((SELECT n FROM grouped WHERE g = 15), 0),
            'by_level', coalesce((SELECT jsonb_object_agg(log_level, n) FROM grouped WHERE g = 7), '{}'::jsonb),
            'by_source', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'source_type', source_type, 'source_id', source_id, 'count', n)
                    ORDER BY n DESC, source_type, source_id)
                FROM (SELECT * FROM grouped WHERE g = 9
                       ORDER BY n DESC, source_type, source_id LIMIT $5) s), '[]'::jsonb),
            'by_worker', coalesce((SELECT jsonb_agg(jsonb_build_object('worker_id', worker_id, 'count', n)
                    ORDER BY n DESC, worker_id)
                FROM (SELECT * FROM grouped WHERE g = 14 AND worker_id IS NOT NULL
                       ORDER BY n DESC, worker_id LIMIT $5) w), '[]'::jsonb),
            'top_messages', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'message', message, 'cause', cause, 'count', n, 'first_seen', first_seen,
                    'last_seen', last_seen, 'log_level', log_level, 'source_type', source_type)
                    ORDER BY n DESC, last_seen DESC, message)
                FROM (SELECT * FROM messages
                       ORDER BY n DESC, last_seen DESC, message LIMIT $5) m), '[]'::jsonb),
            'distinct_sources', (SELECT count(*) FROM grouped WHERE g = 9),
            'distinct_workers', (SELECT count(*) FROM grouped WHERE g = 14 AND worker_id IS NOT NULL),
            'distinct_messages', (SELECT count(*) FROM messages))
        $q$,
        CASE WHEN worker_id IS NOT NULL THEN 'AND false' ELSE '' END,
        CASE WHEN source_type IS NOT NULL THEN 'AND e.source_type = $3' ELSE '' END,
        CASE WHEN source_type IS NOT NULL THEN 'AND s.source_type = $3' ELSE '' END,
        CASE WHEN worker_id IS NOT NULL THEN 'AND s.worker_id = $4' ELSE '' END);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_log_errors_summary_statement(text, text) IS
    'The SQL text func_log_errors_summary executes (conditions on source_type/worker_id only when given), over $1 since, $2 until, $3 source_type, $4 worker_id, $5 top: counts from func_log_counts, messages from system_log_error_counts for whole hours and from system_logs for the partial edge hours. For EXPLAIN.';

-- What both error aggregates below accept: a window with a start, lists of 1..1000.
CREATE OR REPLACE FUNCTION hub_internal.func_log_errors_args_check(since timestamptz, top integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF since IS NULL THEN
        RAISE EXCEPTION 'since is required (the start of the window)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF top IS NULL OR top NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'top must be between 1 and 1000, got %', coalesce(top::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_log_errors_args_check(timestamptz, integer) IS
    'Raises invalid_parameter_value unless since is given and top is between 1 and 1000: the arguments func_log_errors_summary and func_log_errors_by_task share.';

-- ERROR and CRITICAL logs of [since, until) summarised by the statement above: totals by
-- level, by source, by worker and the most frequent messages. Lists hold the top entries by count; the distinct_* keys say
-- how many groups there were, so a cut list is never mistaken for the whole.
CREATE OR REPLACE FUNCTION public.func_log_errors_summary(
    since timestamptz,
    until timestamptz DEFAULT now(),
    source_type text DEFAULT NULL,
    worker_id text DEFAULT NULL,
    top integer DEFAULT 20
) RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    v_result jsonb;
    v_until timestamptz := coalesce(until, now());
BEGIN
    PERFORM hub_internal.func_log_errors_args_check(since, top);
    EXECUTE hub_internal.func_log_errors_summary_statement(source_type, worker_id)
        INTO v_result
        USING since, v_until, source_type, worker_id, top;
    RETURN v_result;
END;
$$;
COMMENT ON FUNCTION public.func_log_errors_summary(timestamptz, timestamptz, text, text, integer) IS
    'ERROR and CRITICAL logs in [since, until) (optionally of one source_type and/or worker), aggregated in the database from the rollups (exact for any window): {since, until, total, by_level: {ERROR, CRITICAL}, by_source: [{source_type, source_id, count}], by_worker: [{worker_id, count}], top_messages: [{message, cause, count, first_seen, last_seen, log_level, source_type}], distinct_sources, distinct_workers, distinct_messages}. Messages are grouped by fingerprint (md5 of their first 200 characters) with level and source_type; "message" is the full text of the first message of its group, "cause" the last line of the most recent exception in it (null when none had one). Lists hold the top entries by count (1..1000).';

-- ERROR and CRITICAL logs of [since, until) counted per task: the seed's by_task, which
-- its query_logs.py counted from at most 1,000 fetched rows. The rollups have no task, so
-- this reads the rows through the errors partial index: its cost follows the errors of
-- the window, not all of its logs, and it is a separate call so that the rollup-backed
-- summary above keeps its cost.
CREATE OR REPLACE FUNCTION public.func_log_errors_by_task(
    since timestamptz,
    until timestamptz DEFAULT now(),
    source_type text DEFAULT NULL,
    worker_id text DEFAULT NULL,
    top integer DEFAULT 20
) RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC'
AS $$
#variable_conflict use_variable
DECLARE
    v_until timestamptz := coalesce(until, now());
    v_result jsonb;
BEGIN
    PERFORM hub_internal.func_log_errors_args_check(since, top);
    WITH tasks AS MATERIALIZED (
        SELECT s.task_id, count(*) AS n, max(s."timestamp") AS last_seen
          FROM public.system_logs s
         WHERE s."timestamp" >= since AND s."timestamp" < v_until
           AND s.severity_number >= 17 AND s.task_id IS NOT NULL
           AND (source_type IS NULL OR s.source_type = source_type)
           AND (worker_id IS NULL OR s.worker_id = worker_id)
         GROUP BY s.task_id
    )
    SELECT jsonb_build_object(
        'since', since,
        'until', v_until,
        'by_task', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'task_id', t.task_id, 'count', t.n, 'last_seen', t.last_seen)
                ORDER BY t.n DESC, t.task_id)
            FROM (SELECT * FROM tasks ORDER BY n DESC, task_id LIMIT top) t), '[]'::jsonb),
        'distinct_tasks', (SELECT count(*) FROM tasks))
      INTO v_result;
    RETURN v_result;
END;
$$;
COMMENT ON FUNCTION public.func_log_errors_by_task(timestamptz, timestamptz, text, text, integer) IS
    'ERROR and CRITICAL logs in [since, until) that carry a task_id (optionally of one source_type and/or worker), counted per task: {since, until, by_task: [{task_id, count, last_seen}] (the top entries by count, 1..1000), distinct_tasks}. Reads the rows through the errors index (the rollups have no task).';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_log_errors_args_check(timestamptz, integer)',
        'public.func_log_errors_by_task(timestamptz, timestamptz, text, text, integer)',
        'public.func_log_statistics(timestamptz, timestamptz)',
        'hub_internal.func_log_errors_summary_statement(text, text)',
        'public.func_log_errors_summary(timestamptz, timestamptz, text, text, integer)'
    ]::regprocedure[]);
