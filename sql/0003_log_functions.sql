-- 0003_log_functions.sql
-- The RPC contract of the log store. psycopg, asyncpg, supabase-py's rpc() and a person
-- in the SQL editor all call these same functions, so they all get the same rules.
-- Idempotent: safe to run again in the SQL editor or with psql -v ON_ERROR_STOP=1 -f.

-- Inserts a batch of log entries in one set-based statement (no per-row loop, no
-- per-row subtransaction). Every entry is checked first; a bad one is rejected with its
-- index and reason and the others are inserted. What each kind of bad input gets is
-- documented in README.md ("What the insert function accepts"); in short:
--   rejected : not an object; message, level, source_type or source_id missing; unknown
--              level; malformed id; malformed timestamp;
--   repaired : (noted under metadata._ingest) message over 32 KiB and exception over
--              64 KiB truncated; metadata over 64 KiB replaced; metadata that is not an
--              object wrapped as {"value": ...}; malformed task_id or cycle_number
--              dropped; timestamp more than 30 days old or 1 hour ahead stored at
--              arrival time with the original kept.
-- Idempotent on the client-supplied (timestamp, id): duplicates are counted, not stored.
CREATE OR REPLACE FUNCTION public.func_insert_logs_batch(logs jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_logs jsonb := logs;
    v_count integer;
    v_valid integer;
    v_inserted integer;
    v_rejected jsonb;
BEGIN
    IF logs IS NULL OR jsonb_typeof(logs) <> 'array' THEN
        RETURN jsonb_build_object(
            'success', false, 'inserted', 0, 'duplicates', 0, 'rejected', '[]'::jsonb,
            'error', format('logs must be a JSON array of log entry objects, got %s',
                            coalesce('a JSON ' || jsonb_typeof(logs), 'SQL NULL')));
    END IF;
    v_count := jsonb_array_length(logs);
    IF v_count = 0 THEN
        RETURN jsonb_build_object('success', true, 'inserted', 0, 'duplicates', 0,
                                  'rejected', '[]'::jsonb);
    END IF;
    IF v_count > 10000 THEN
        RETURN jsonb_build_object(
            'success', false, 'inserted', 0, 'duplicates', 0, 'rejected', '[]'::jsonb,
            'error', format('a batch holds at most 10000 entries, got %s; split it', v_count));
    END IF;
    -- Rare case: entries that are not objects are swapped for a marker object, so the
    -- fast jsonb_to_recordset() below can read every entry in one pass.
    IF jsonb_path_exists(logs, 'strict $[*] ? (@.type() != "object")') THEN
        SELECT jsonb_agg(CASE WHEN jsonb_typeof(e.value) = 'object' THEN e.value
                              ELSE jsonb_build_object('$not_object', jsonb_typeof(e.value)) END
                         ORDER BY e.ord)
          INTO v_logs
          FROM jsonb_array_elements(logs) WITH ORDINALITY AS e(value, ord);
    END IF;

    WITH parsed AS MATERIALIZED (  -- computed once per row, not once per reference
        SELECT (r.ord - 1)::integer AS idx, r.*,
               upper(btrim(coalesce(r.log_level, r.level))) AS level_in,
               public.func_parse_log_timestamp(r."timestamp") AS ts_in,
               -- A UUID is 32 hex digits; hyphens and braces are ignored. Checking the
               -- digits with length() and a short class regex is far cheaper in
               -- PostgreSQL than a pattern with counted repetitions.
               CASE WHEN r.id ~ '^[0-9a-fA-F{}-]+$' AND length(translate(r.id, '-{}', '')) = 32
                    THEN translate(r.id, '-{}', '')::uuid END AS id_in,
               CASE WHEN r.task_id ~ '^[0-9a-fA-F{}-]+$' AND length(translate(r.task_id, '-{}', '')) = 32
                    THEN translate(r.task_id, '-{}', '')::uuid END AS task_in,
               CASE WHEN r.cycle_number ~ '^\s*-?\d{1,10}\s*$' THEN
                    CASE WHEN btrim(r.cycle_number)::bigint BETWEEN -2147483648 AND 2147483647
                         THEN btrim(r.cycle_number)::integer END END AS cycle_in,
               pg_column_size(r.metadata) AS metadata_bytes
          FROM ROWS FROM (jsonb_to_recordset(v_logs)
                 AS (id text, "timestamp" text, log_level text, level text, source_type text,
                     source_id text, message text, task_id text, worker_id text,
                     cycle_number text, metadata jsonb, logger_name text, correlation_id text,
                     exception text, "$not_object" text))
               WITH ORDINALITY
            AS r(id, "timestamp", log_level, level, source_type, source_id, message, task_id,
                 worker_id, cycle_number, metadata, logger_name, correlation_id, exception,
                 "$not_object", ord)
    ), checked AS (
        SELECT p.*,
            CASE
                WHEN p."$not_object" IS NOT NULL THEN
                    format('entry must be a JSON object, got a JSON %s', p."$not_object")
                WHEN p.message IS NULL THEN 'missing required key "message"'
                WHEN p.level_in IS NULL THEN 'missing required key "log_level" (or its alias "level")'
                WHEN p.level_in NOT IN ('DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL', 'FATAL') THEN
                    format('unknown level %s; accepted: DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL (or FATAL), in any case',
                           quote_literal(left(coalesce(p.log_level, p.level), 40)))
                WHEN nullif(btrim(p.source_type), '') IS NULL THEN 'missing required key "source_type"'
                WHEN nullif(btrim(p.source_id), '') IS NULL THEN 'missing required key "source_id"'
                WHEN p.id IS NOT NULL AND p.id_in IS NULL THEN
                    format('malformed id %s; expected a UUID such as 0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a',
                           quote_literal(left(p.id, 64)))
                WHEN p."timestamp" IS NOT NULL AND p.ts_in IS NULL THEN
                    format('malformed timestamp %s; expected ISO 8601 such as 2026-11-23T18:20:00.123Z (no zone means UTC) or Unix epoch seconds',
                           quote_literal(left(p."timestamp", 64)))
            END AS reason,
            (p.ts_in < now() - interval '30 days' OR p.ts_in > now() + interval '1 hour') AS ts_far,
            CASE
                WHEN p.metadata_bytes > 65536 THEN '{}'::jsonb
                WHEN p.metadata IS NULL OR jsonb_typeof(p.metadata) = 'null' THEN '{}'::jsonb
                WHEN jsonb_typeof(p.metadata) = 'object' THEN p.metadata
                ELSE jsonb_build_object('value', p.metadata)
            END AS meta
          FROM parsed p
    ), inserted AS (
        INSERT INTO public.system_logs AS s (
            id, "timestamp", source_type, source_id, log_level, severity_number, logger_name,
            message, task_id, worker_id, cycle_number, correlation_id, exception, metadata)
        SELECT
            coalesce(c.id_in, public.func_uuid_v7(coalesce(c.ts_in, now()))),
            CASE WHEN c.ts_in IS NULL OR c.ts_far THEN now() ELSE c.ts_in END,
            left(btrim(c.source_type), 64),
            left(btrim(c.source_id), 255),
            CASE c.level_in WHEN 'WARN' THEN 'WARNING' WHEN 'FATAL' THEN 'CRITICAL' ELSE c.level_in END,
            CASE c.level_in WHEN 'DEBUG' THEN 5 WHEN 'INFO' THEN 9 WHEN 'WARNING' THEN 13
                            WHEN 'WARN' THEN 13 WHEN 'ERROR' THEN 17 ELSE 21 END,
            left(c.logger_name, 255),
            left(c.message, 32768),
            c.task_in,
            left(nullif(c.worker_id, ''), 255),
            c.cycle_in,
            left(nullif(c.correlation_id, ''), 128),
            left(c.exception, 65536),
            -- Repairs are noted only when there is one: concatenating jsonb re-encodes
            -- the whole value, which most rows need not pay for.
            CASE WHEN c.ts_far
                      OR (c.task_id IS NOT NULL AND c.task_in IS NULL)
                      OR (c.cycle_number IS NOT NULL AND c.cycle_in IS NULL)
                      OR length(c.message) > 32768 OR length(c.exception) > 65536
                      OR c.metadata_bytes > 65536
                 THEN c.meta || jsonb_build_object('_ingest', jsonb_strip_nulls(jsonb_build_object(
                        'timestamp_clamped_from', CASE WHEN c.ts_far THEN c."timestamp" END,
                        'invalid_task_id', CASE WHEN c.task_in IS NULL THEN left(c.task_id, 200) END,
                        'invalid_cycle_number', CASE WHEN c.cycle_in IS NULL THEN left(c.cycle_number, 200) END,
                        'message_truncated_from', CASE WHEN length(c.message) > 32768 THEN length(c.message) END,
                        'exception_truncated_from', CASE WHEN length(c.exception) > 65536 THEN length(c.exception) END,
                        'metadata_dropped_bytes', CASE WHEN c.metadata_bytes > 65536 THEN c.metadata_bytes END)))
                 ELSE c.meta END
          FROM checked c
         WHERE c.reason IS NULL
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted),
           (SELECT count(*) FROM checked WHERE reason IS NULL),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('index', idx, 'reason', reason) ORDER BY idx), '[]'::jsonb)
              FROM checked WHERE reason IS NOT NULL)
      INTO v_inserted, v_valid, v_rejected;

    RETURN jsonb_build_object('success', true, 'inserted', v_inserted,
                              'duplicates', v_valid - v_inserted, 'rejected', v_rejected);
END;
$$;
COMMENT ON FUNCTION public.func_insert_logs_batch(jsonb) IS
    'Inserts a JSON array of log entries (keys: id, timestamp, log_level or level, source_type, source_id, message, task_id, worker_id, cycle_number, metadata, logger_name, correlation_id, exception). Returns {success, inserted, duplicates, rejected: [{index, reason}]}; bad entries are rejected alone, retries of the same (timestamp, id) are counted as duplicates.';

-- Retention by whole partitions: every daily partition whose day ended more than
-- retention_hours ago is dropped (cost independent of its row count); rows of the
-- DEFAULT partition older than the cut-off are deleted row by row (it holds only the
-- stragglers maintenance has not placed yet). "deleted" counts the deleted rows plus
-- the planner's row estimate for each dropped partition (counting them exactly would
-- cost as much as the DELETE this design avoids). A partition whose lock cannot be had
-- within 5 s (a long query is reading it) is skipped and listed; the next run drops it.
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
            v_dropped := v_dropped || v_part.relname::text;
            v_estimated := v_estimated + v_part.estimate;
        EXCEPTION WHEN lock_not_available THEN
            v_skipped := v_skipped || v_part.relname::text;
        END;
    END LOOP;

    DELETE FROM public.system_logs_default WHERE "timestamp" < v_cutoff;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;

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
    'Removes logs older than retention_hours (default 48, at least 1) by dropping whole daily partitions. Returns {success, deleted, dropped_partitions, retention_hours, ...}; "deleted" uses the planner''s estimate for dropped partitions.';

-- Statistics aggregated in the database over [since, until): one pass over the window
-- with GROUPING SETS, so clients never count truncated rows themselves.
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
               count(*) AS n,
               count(*) FILTER (WHERE severity_number >= 17) AS errors,
               max("timestamp") AS last_seen
          FROM public.system_logs
         WHERE "timestamp" >= since AND "timestamp" < until
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
    'Counts of logs in [since, until) (default: the last 24 hours) by level, by source and by worker, with error counts and last-seen times, aggregated in the database. Returns {since, until, total, errors, by_level, by_source, by_worker}.';

-- Views for the SQL editor. security_invoker: a view reads with its caller's rights,
-- so RLS and the revoked grants apply through it too.
CREATE OR REPLACE VIEW public.v_recent_errors WITH (security_invoker = true) AS
SELECT id, "timestamp", source_type, source_id, log_level, logger_name, message,
       task_id, worker_id, cycle_number, correlation_id, exception, metadata
  FROM public.system_logs
 WHERE "timestamp" > now() - interval '24 hours' AND severity_number >= 17
 ORDER BY "timestamp" DESC, id DESC;
COMMENT ON VIEW public.v_recent_errors IS 'ERROR and CRITICAL logs of the last 24 hours, newest first.';

CREATE OR REPLACE VIEW public.v_worker_log_activity WITH (security_invoker = true) AS
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

CREATE OR REPLACE VIEW public.v_error_summary WITH (security_invoker = true) AS
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

SELECT public.func_hub_secure(
    p_tables => ARRAY['public.v_recent_errors', 'public.v_worker_log_activity',
                      'public.v_error_summary']::regclass[],
    p_functions => ARRAY[
        'public.func_insert_logs_batch(jsonb)',
        'public.func_cleanup_old_logs(integer)',
        'public.func_log_statistics(timestamptz, timestamptz)',
        'public.func_schedule_log_maintenance(integer)'
    ]::regprocedure[]);
SELECT public.func_schedule_log_maintenance();
