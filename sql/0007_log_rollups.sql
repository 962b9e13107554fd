-- 0007_log_rollups.sql
-- Count rollups of system_logs, maintained on write, so that aggregates over long
-- windows read thousands of rollup rows instead of millions of log rows, and stay EXACT.
--
--   system_log_counts        rows per (resolution, bucket, log_level, source_type,
--                            source_id, worker_id): count, errors (severity >= 17) and
--                            last_seen, at two resolutions: 'minute' and 'hour' (UTC).
--   system_log_error_counts  ERROR/CRITICAL rows per (hour, log_level, source_type,
--                            message fingerprint): count, first_seen, last_seen and the
--                            first message. Per-source and per-worker error counts come
--                            from system_log_counts.errors; keeping workers out of this
--                            key lets an hour's many similar errors share one row.
--
-- One statement-level AFTER INSERT trigger on the partitioned parent maintains both from
-- its transition table, so every path that writes through the parent is counted: the
-- jsonb RPC (func_insert_logs_batch), the staged COPY (func_insert_staged_logs) and the
-- handler's binary COPY into public.system_logs. Rows skipped by ON CONFLICT DO NOTHING
-- (retried batches) are not in the transition table, so they are not counted. Rows
-- written straight into a partition (never done by the hub) are not counted: repair with
-- func_log_rollups_rebuild(since, until). Logs are append-only; an UPDATE or DELETE done
-- by hand needs the same repair.
--
-- A window [since, until) is read as: whole hours from the 'hour' rows, whole minutes at
-- both ends from the 'minute' rows, and the partial minutes at both edges from the log
-- rows themselves (primary-key range scans), so the result equals a count over the raw
-- rows for any window (func_log_counts). Error messages: whole hours from the message
-- rollup, the partial hours at both edges from the rows (errors partial index).
--
-- Idempotent: safe to run again in the SQL editor or with psql -v ON_ERROR_STOP=1 -f.
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

-- The fingerprint that groups error messages: md5 of the first 200 characters, as a
-- uuid (16 bytes). 200 characters keep apart every message people tell apart by eye,
-- while a long tail (an appended traceback or payload) does not split a group.
CREATE OR REPLACE FUNCTION public.func_log_message_fingerprint(p_message text)
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT md5(left(p_message, 200))::uuid
$$;
COMMENT ON FUNCTION public.func_log_message_fingerprint(text) IS
    'Groups error messages in system_log_error_counts: md5 of the first 200 characters of the message, as a uuid.';

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

-- Adds a set of log rows (the transition table of the trigger, or log rows being
-- recounted) to both rollups. Each upsert visits its keys in key order, so concurrent
-- writers lock the same rollup rows in the same order and cannot deadlock; both tables
-- are always visited in the same order (counts, then errors).
CREATE OR REPLACE FUNCTION public.func_log_rollups_trigger()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- writers of logs need no right to write the counts themselves
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    INSERT INTO public.system_log_counts AS c
           (resolution, bucket, log_level, source_type, source_id, worker_id, count, errors, last_seen)
    SELECT r.resolution, date_trunc(r.resolution, n."timestamp", 'UTC'),
           n.log_level, n.source_type, n.source_id, n.worker_id,
           count(*), count(*) FILTER (WHERE n.severity_number >= 17), max(n."timestamp")
      FROM new_rows n
     CROSS JOIN (VALUES ('minute'), ('hour')) AS r(resolution)
     GROUP BY 1, 2, 3, 4, 5, 6
     ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (resolution, bucket, log_level, source_type, source_id, worker_id) DO UPDATE
       SET count = c.count + excluded.count,
           errors = c.errors + excluded.errors,
           last_seen = greatest(c.last_seen, excluded.last_seen);

    INSERT INTO public.system_log_error_counts AS e
           (bucket, log_level, source_type, fingerprint, count, first_seen, last_seen, message)
    SELECT date_trunc('hour', n."timestamp", 'UTC'), n.log_level, n.source_type,
           public.func_log_message_fingerprint(n.message),
           count(*), min(n."timestamp"), max(n."timestamp"),
           (array_agg(n.message ORDER BY n."timestamp", n.id))[1]
      FROM new_rows n
     WHERE n.severity_number >= 17
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, log_level, source_type, fingerprint) DO UPDATE
       SET count = e.count + excluded.count,
           message = CASE WHEN excluded.first_seen < e.first_seen THEN excluded.message ELSE e.message END,
           first_seen = least(e.first_seen, excluded.first_seen),
           last_seen = greatest(e.last_seen, excluded.last_seen);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION public.func_log_rollups_trigger() IS
    'Statement-level AFTER INSERT trigger of system_logs: adds the inserted rows (transition table new_rows) to system_log_counts and system_log_error_counts, upserting in key order.';

DROP TRIGGER IF EXISTS system_logs_rollup ON public.system_logs;
CREATE TRIGGER system_logs_rollup
    AFTER INSERT ON public.system_logs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.func_log_rollups_trigger();

-- Recounts the rollups of the whole UTC hours that overlap [since, until) from the log
-- rows: the backfill, the repair after a hand-made change, and retention's tool for the
-- rows it deletes from the default partition. The rollups are locked against the
-- trigger first (SHARE ROW EXCLUSIVE: concurrent inserts of logs proceed, their counting
-- waits), so every log row is counted exactly once: a writer that counted before the
-- lock has committed and its rows are recounted here; a writer that counts after it
-- adds to the recount. Needs READ COMMITTED (each statement sees what committed before
-- it), the default isolation.
CREATE OR REPLACE FUNCTION public.func_log_rollups_rebuild(since timestamptz, until timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER  -- service_role runs it from retention; the rollups are not its to lock
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_from timestamptz := date_trunc('hour', since, 'UTC');
    v_to timestamptz := date_trunc('hour', until, 'UTC');
    v_rows bigint;
BEGIN
    IF since IS NULL OR until IS NULL OR until < since THEN
        RAISE EXCEPTION 'since and until must be times with since <= until, got % and %',
            coalesce(since::text, 'NULL'), coalesce(until::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'func_log_rollups_rebuild needs READ COMMITTED isolation, got %',
            current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
    END IF;
    IF v_to < until THEN
        v_to := v_to + interval '1 hour';
    END IF;
    LOCK TABLE public.system_log_counts, public.system_log_error_counts IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM public.system_log_counts WHERE bucket >= v_from AND bucket < v_to;
    DELETE FROM public.system_log_error_counts WHERE bucket >= v_from AND bucket < v_to;

    INSERT INTO public.system_log_counts
           (resolution, bucket, log_level, source_type, source_id, worker_id, count, errors, last_seen)
    SELECT r.resolution, date_trunc(r.resolution, s."timestamp", 'UTC'),
           s.log_level, s.source_type, s.source_id, s.worker_id,
           count(*), count(*) FILTER (WHERE s.severity_number >= 17), max(s."timestamp")
      FROM public.system_logs s
     CROSS JOIN (VALUES ('minute'), ('hour')) AS r(resolution)
     WHERE s."timestamp" >= v_from AND s."timestamp" < v_to
     GROUP BY 1, 2, 3, 4, 5, 6;
    INSERT INTO public.system_log_error_counts
           (bucket, log_level, source_type, fingerprint, count, first_seen, last_seen, message)
    SELECT date_trunc('hour', s."timestamp", 'UTC'), s.log_level, s.source_type,
           public.func_log_message_fingerprint(s.message),
           count(*), min(s."timestamp"), max(s."timestamp"),
           (array_agg(s.message ORDER BY s."timestamp", s.id))[1]
      FROM public.system_logs s
     WHERE s."timestamp" >= v_from AND s."timestamp" < v_to AND s.severity_number >= 17
     GROUP BY 1, 2, 3, 4;
    SELECT coalesce(sum(count), 0) INTO v_rows
      FROM public.system_log_counts WHERE resolution = 'hour' AND bucket >= v_from AND bucket < v_to;
    RETURN jsonb_build_object('success', true, 'from', v_from, 'to', v_to, 'rows_counted', v_rows);
END;
$$;
COMMENT ON FUNCTION public.func_log_rollups_rebuild(timestamptz, timestamptz) IS
    'Recounts system_log_counts and system_log_error_counts for the whole UTC hours overlapping [since, until) from system_logs (backfill, repair after hand-made changes). Locks the rollups against concurrent counting for its duration. Returns {success, from, to, rows_counted}.';

-- Backfill, once: logs stored before this migration are counted when the rollup is
-- still empty (CREATE TRIGGER above already counts everything inserted from now on, and
-- the rebuild's lock makes the two meet exactly).
DO $$
DECLARE
    v_min timestamptz;
    v_max timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.system_log_counts) THEN
        SELECT min("timestamp"), max("timestamp") INTO v_min, v_max FROM public.system_logs;
        IF v_min IS NOT NULL THEN
            PERFORM public.func_log_rollups_rebuild(v_min, v_max + interval '1 microsecond');
            -- planner statistics now, not at autovacuum's next visit
            ANALYZE public.system_log_counts, public.system_log_error_counts;
        END IF;
    END IF;
END;
$$;

-- Exact counts per (log_level, source_type, source_id, worker_id) over [since, until),
-- optionally of one source_type and/or one worker, or only of keys with errors: whole
-- hours from the 'hour' rows, whole minutes at both ends from the 'minute' rows, the
-- partial minutes at both edges from system_logs (primary-key range scans). The one
-- place that knows how a window is cut into pieces; func_log_statistics and
-- func_log_errors_summary read through it. As in 0006, the statement is built from
-- fixed fragments (one per filter given) and run with EXECUTE ... USING, so each call
-- is planned with its values: partitions are pruned, and with only_errors the partial
-- index of the error keys (system_log_counts_errors) and the errors index of 0002 serve.
-- The rows are few (at most a few tens of thousands), so no parallel workers are started.
CREATE OR REPLACE FUNCTION public.func_log_counts(
    since timestamptz,
    until timestamptz,
    only_source_type text DEFAULT NULL,
    only_worker_id text DEFAULT NULL,
    only_errors boolean DEFAULT false
) RETURNS TABLE (log_level text, source_type text, source_id text, worker_id text,
                 count bigint, errors bigint, last_seen timestamptz)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    -- [since, m1) and [m2, until) are partial minutes; [m1, h1) and [h2, m2) whole
    -- minutes; [h1, h2) whole hours. Empty pieces collapse onto until or m2.
    v_m1 timestamptz := date_trunc('minute', since, 'UTC');
    v_m2 timestamptz := date_trunc('minute', until, 'UTC');
    v_h1 timestamptz;
    v_h2 timestamptz;
    v_raw text;     -- conditions on system_logs s
    v_rollup text;  -- conditions on system_log_counts c
BEGIN
    IF v_m1 < since THEN
        v_m1 := v_m1 + interval '1 minute';
    END IF;
    IF NOT v_m1 < v_m2 THEN
        v_m1 := until;
        v_m2 := until;
    END IF;
    v_h1 := date_trunc('hour', v_m1, 'UTC');
    IF v_h1 < v_m1 THEN
        v_h1 := v_h1 + interval '1 hour';
    END IF;
    v_h2 := date_trunc('hour', v_m2, 'UTC');
    IF NOT v_h1 < v_h2 THEN
        v_h1 := v_m2;
        v_h2 := v_m2;
    END IF;
    v_raw := concat(CASE WHEN only_source_type IS NOT NULL THEN ' AND s.source_type = $7' END,
                    CASE WHEN only_worker_id IS NOT NULL THEN ' AND s.worker_id = $8' END,
                    CASE WHEN only_errors THEN ' AND s.severity_number >= 17' END);
    v_rollup := concat(CASE WHEN only_source_type IS NOT NULL THEN ' AND c.source_type = $7' END,
                       CASE WHEN only_worker_id IS NOT NULL THEN ' AND c.worker_id = $8' END,
                       CASE WHEN only_errors THEN ' AND c.errors > 0' END);

    -- Grouped under the "C" collation: equality is the same, and hashing or sorting
    -- text that way is several times cheaper than under a linguistic collation.
    RETURN QUERY EXECUTE format($q$
        SELECT p.log_level COLLATE "C", p.source_type COLLATE "C", p.source_id COLLATE "C",
               p.worker_id COLLATE "C", sum(p.n)::bigint, sum(p.e)::bigint, max(p.last)
          FROM (
            SELECT s.log_level, s.source_type, s.source_id, s.worker_id, count(*) AS n,
                   count(*) FILTER (WHERE s.severity_number >= 17) AS e,
                   max(s."timestamp") AS last
              FROM public.system_logs s
             WHERE s."timestamp" >= $1 AND s."timestamp" < $3 %1$s
             GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT s.log_level, s.source_type, s.source_id, s.worker_id, count(*),
                   count(*) FILTER (WHERE s.severity_number >= 17), max(s."timestamp")
              FROM public.system_logs s
             WHERE s."timestamp" >= $4 AND s."timestamp" < $2 %1$s
             GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT c.log_level, c.source_type, c.source_id, c.worker_id, c.count, c.errors,
                   c.last_seen
              FROM public.system_log_counts c
             WHERE c.resolution = 'minute' AND c.bucket >= $3 AND c.bucket < $5 %2$s
            UNION ALL
            SELECT c.log_level, c.source_type, c.source_id, c.worker_id, c.count, c.errors,
                   c.last_seen
              FROM public.system_log_counts c
             WHERE c.resolution = 'minute' AND c.bucket >= $6 AND c.bucket < $4 %2$s
            UNION ALL
            SELECT c.log_level, c.source_type, c.source_id, c.worker_id, c.count, c.errors,
                   c.last_seen
              FROM public.system_log_counts c
             WHERE c.resolution = 'hour' AND c.bucket >= $5 AND c.bucket < $6 %2$s
          ) AS p
         GROUP BY 1, 2, 3, 4
        $q$, v_raw, v_rollup)
        USING since, until, v_m1, v_m2, v_h1, v_h2, only_source_type, only_worker_id;
END;
$$;
COMMENT ON FUNCTION public.func_log_counts(timestamptz, timestamptz, text, text, boolean) IS
    'Exact counts of logs in [since, until) per (log_level, source_type, source_id, worker_id), optionally of one source_type and/or worker, or only where errors > 0: rows, rows with severity >= 17 (errors) and the latest "timestamp". Whole hours and minutes from the rollup system_log_counts, partial minutes from system_logs.';

-- Statistics over [since, until): same result as 0003's version, from func_log_counts.
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
          FROM public.func_log_counts(since, until)
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

-- The errors summary of 0006, same result, read from the rollups: totals by level,
-- source and worker from func_log_counts (errors > 0), top messages from the message
-- rollup for whole hours and from the rows (errors partial index) for the partial hours
-- at both edges, or for the whole window when one worker is asked for (the message
-- rollup has no worker). func_log_errors_summary (0006) runs this text with
-- EXECUTE ... USING $1 since, $2 until, $3 source_type, $4 worker_id, $5 top.
CREATE OR REPLACE FUNCTION public.func_log_errors_summary_statement(
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
              FROM public.func_log_counts($1, $2, $3, $4, only_errors => true)
             GROUP BY GROUPING SETS ((log_level), (source_type, source_id), (worker_id), ())
        ), pieces AS (
            SELECT e.log_level, e.source_type, e.fingerprint, e.count AS n, e.first_seen,
                   e.last_seen, e.message
              FROM public.system_log_error_counts e
             WHERE e.bucket >= (SELECT h1 FROM bounds) AND e.bucket < (SELECT h2 FROM bounds) %2$s
            UNION ALL
            SELECT s.log_level, s.source_type, public.func_log_message_fingerprint(s.message),
                   count(*), min(s."timestamp"), max(s."timestamp"),
                   (array_agg(s.message ORDER BY s."timestamp", s.id))[1]
              FROM public.system_logs s
             WHERE s."timestamp" >= $1 AND s."timestamp" < $2
               AND s."timestamp" < (SELECT h1 FROM bounds)
               AND s.severity_number >= 17 %3$s %4$s
             GROUP BY 1, 2, 3
            UNION ALL
            SELECT s.log_level, s.source_type, public.func_log_message_fingerprint(s.message),
                   count(*), min(s."timestamp"), max(s."timestamp"),
                   (array_agg(s.message ORDER BY s."timestamp", s.id))[1]
              FROM public.system_logs s
             WHERE s."timestamp" >= $1 AND s."timestamp" < $2
               AND s."timestamp" >= (SELECT h2 FROM bounds)
               AND s.severity_number >= 17 %3$s %4$s
             GROUP BY 1, 2, 3
        ), pieces_c AS MATERIALIZED (
            SELECT log_level COLLATE "C" AS log_level, source_type COLLATE "C" AS source_type,
                   fingerprint, n, first_seen, last_seen, message
              FROM pieces
        ), groups AS (
            SELECT log_level, source_type, fingerprint, sum(n)::bigint AS n,
                   min(first_seen) AS first_seen, max(last_seen) AS last_seen
              FROM pieces_c
             GROUP BY 1, 2, 3
        ), messages AS MATERIALIZED (
            -- the message of a group is that of its earliest piece (pieces never share
            -- a first_seen: they are disjoint in time)
            SELECT g.log_level, g.source_type, g.fingerprint, g.n, g.first_seen, g.last_seen,
                   p.message
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
                    'message', message, 'count', n, 'first_seen', first_seen, 'last_seen', last_seen,
                    'log_level', log_level, 'source_type', source_type)
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
COMMENT ON FUNCTION public.func_log_errors_summary_statement(text, text) IS
    'The SQL text func_log_errors_summary executes (conditions on source_type/worker_id only when given), over $1 since, $2 until, $3 source_type, $4 worker_id, $5 top: counts from func_log_counts, messages from system_log_error_counts for whole hours and from system_logs for the partial edge hours. For EXPLAIN.';
COMMENT ON FUNCTION public.func_log_errors_summary(timestamptz, timestamptz, text, text, integer) IS
    'ERROR and CRITICAL logs in [since, until) (optionally of one source_type and/or worker), aggregated in the database from the rollups (exact for any window): {since, until, total, by_level: {ERROR, CRITICAL}, by_source: [{source_type, source_id, count}], by_worker: [{worker_id, count}], top_messages: [{message, count, first_seen, last_seen, log_level, source_type}], distinct_sources, distinct_workers, distinct_messages}. Messages are grouped by fingerprint (md5 of their first 200 characters) with level and source_type; "message" is the full text of the first message of its group. Lists hold the top entries by count (1..1000).';

-- Retention as in 0003 (same signature and result), now forgetting the counts of what
-- it removes: a dropped day's partition takes the rollup rows of that day with it (the
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
    PERFORM set_config('lock_timeout', '5s', true);

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
        PERFORM public.func_log_rollups_rebuild(v_oldest, v_cutoff);
    END IF;

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

SELECT public.func_hub_secure(
    p_tables => ARRAY['public.system_log_counts', 'public.system_log_error_counts']::regclass[],
    p_functions => ARRAY[
        'public.func_log_message_fingerprint(text)',
        'public.func_log_rollups_trigger()',
        'public.func_log_rollups_rebuild(timestamptz, timestamptz)',
        'public.func_cleanup_old_logs(integer)',
        'public.func_log_counts(timestamptz, timestamptz, text, text, boolean)',
        'public.func_log_statistics(timestamptz, timestamptz)',
        'public.func_log_errors_summary_statement(text, text)',
        'public.func_log_errors_summary(timestamptz, timestamptz, text, text, integer)'
    ]::regprocedure[]);
SELECT public.func_hub_service_role_policy('public.system_log_counts');
SELECT public.func_hub_service_role_policy('public.system_log_error_counts');
