-- sql/functions/logs/ingest.sql
-- Writing logs: the RPC contract of the log store. psycopg, asyncpg, supabase-py's rpc()
-- and a person in the SQL editor all call these same functions, so they all get the
-- same rules (README "What the insert function accepts").
--   func_insert_logs_batch   a JSON array of entries, checked in one set-based statement;
--                            a bad entry is rejected alone with its index and reason.
--   func_prepare_log_stage / func_insert_staged_logs
--                            the handler's fast path over a direct connection: binary
--                            COPY into a per-transaction staging table, then one
--                            INSERT ... ON CONFLICT DO NOTHING (parsing jsonb costs more
--                            per row than the insert itself, and COPY skips it). Works
--                            through PgBouncer/Supavisor in transaction mode:
--     BEGIN;
--     SELECT public.func_prepare_log_stage();
--     COPY pg_temp.system_logs_stage_v1 (...) FROM STDIN (FORMAT BINARY);
--     SELECT public.func_insert_staged_logs();
--     COMMIT;
-- Both are idempotent on the client-supplied ("timestamp", id): a retried batch is
-- counted as duplicates, not stored twice.

-- Parses a client timestamp without ever raising: ISO 8601 / RFC 3339 with a time
-- (a missing zone means UTC) or Unix epoch seconds. Returns NULL for anything else,
-- so one malformed entry is rejected alone instead of failing its batch. A loose shape
-- regex (cheap in PostgreSQL's engine) fixes where every field is; integer range checks
-- on those positions do the rest. Every cast sits behind a CASE that proved it safe.
CREATE OR REPLACE FUNCTION hub_internal.func_parse_log_timestamp(p_text text)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_text ~ '^-?\d+(?:\.\d+)?$' THEN
            CASE WHEN length(split_part(p_text, '.', 1)) <= 12 AND length(p_text) <= 24
                 THEN to_timestamp(p_text::double precision) END
        WHEN length(p_text) <= 40
             AND p_text ~ '^\d\d\d\d-\d\d-\d\d[Tt ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[Zz]|[+-]\d\d(?::?\d\d)?)?$' THEN
            CASE WHEN substr(p_text, 1, 4)::int >= 1
                  AND substr(p_text, 6, 2)::int BETWEEN 1 AND 12
                  AND substr(p_text, 12, 2)::int <= 23
                  AND substr(p_text, 15, 2)::int <= 59
                  AND CASE WHEN substr(p_text, 17, 1) = ':' THEN substr(p_text, 18, 2)::int ELSE 0 END <= 59
                  AND p_text !~ '[+-](?:1[5-9]|[2-9]\d)(?::?\d\d)?$'
                  AND p_text !~ '[+-]\d\d:?[6-9]\d$'
            THEN
                CASE WHEN substr(p_text, 9, 2)::int BETWEEN 1 AND extract(day FROM
                          make_date(substr(p_text, 1, 4)::int, substr(p_text, 6, 2)::int, 1)
                          + interval '1 month - 1 day')
                     THEN (CASE WHEN p_text ~ '(?:[Zz]|[+-]\d\d(?::?\d\d)?)$'
                                THEN p_text ELSE p_text || 'Z' END)::timestamptz
                END
            END
    END
$$;
COMMENT ON FUNCTION hub_internal.func_parse_log_timestamp(text) IS
    'ISO 8601 (2026-11-23T18:20:00.123Z; no zone = UTC) or Unix epoch seconds to timestamptz; NULL when malformed. Never raises.';

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
            'success', false, 'inserted', 0, 'duplicates', 0, 'rejected', '[]'::jsonb, 'errors', 1,
            'error', format('logs must be a JSON array of log entry objects, got %s',
                            coalesce('a JSON ' || jsonb_typeof(logs), 'SQL NULL')));
    END IF;
    v_count := jsonb_array_length(logs);
    IF v_count = 0 THEN
        RETURN jsonb_build_object('success', true, 'inserted', 0, 'duplicates', 0,
                                  'rejected', '[]'::jsonb, 'errors', 0);
    END IF;
    IF v_count > 10000 THEN
        RETURN jsonb_build_object(
            'success', false, 'inserted', 0, 'duplicates', 0, 'rejected', '[]'::jsonb, 'errors', v_count,
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
               hub_internal.func_parse_log_timestamp(r."timestamp") AS ts_in,
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
            coalesce(c.id_in, hub_internal.func_uuid_v7(coalesce(c.ts_in, now()))),
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

    -- errors: the seed's handler counts refused entries from this key.
    RETURN jsonb_build_object('success', true, 'inserted', v_inserted,
                              'duplicates', v_valid - v_inserted, 'rejected', v_rejected,
                              'errors', jsonb_array_length(v_rejected));
END;
$$;
COMMENT ON FUNCTION public.func_insert_logs_batch(jsonb) IS
    'Inserts a JSON array of log entries (keys: id, timestamp, log_level or level, source_type, source_id, message, task_id, worker_id, cycle_number, metadata, logger_name, correlation_id, exception). Returns {success, inserted, duplicates, rejected: [{index, reason}], errors}; bad entries are rejected alone, retries of the same (timestamp, id) are counted as duplicates; errors counts the entries not stored for another reason (the rejected ones; every entry of a batch refused whole; 1 for logs that is not an array), as the seed''s log handler reads it.';

CREATE OR REPLACE FUNCTION public.func_prepare_log_stage()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF to_regclass('pg_temp.system_logs_stage_v1') IS NULL THEN
        CREATE TEMP TABLE system_logs_stage_v1 (
            id             text,
            epoch_us       bigint,   -- Unix time in whole microseconds: exact, no float rounding
            source_type    text,
            source_id      text,
            log_level      text,
            logger_name    text,
            message        text,
            task_id        text,
            worker_id      text,
            cycle_number   integer,
            correlation_id text,
            exception      text,
            metadata       text      -- JSON text: encoding it client-side is cheaper
        ) ON COMMIT DELETE ROWS;
    END IF;
END;
$$;
COMMENT ON FUNCTION public.func_prepare_log_stage() IS
    'Creates this connection''s staging table pg_temp.system_logs_stage_v1 (emptied at every commit) if it does not exist yet. Call at the start of each staged batch transaction.';

CREATE OR REPLACE FUNCTION public.func_insert_staged_logs()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_staged integer;
    v_inserted integer;
    v_level text;
BEGIN
    SELECT s.log_level INTO v_level
      FROM pg_temp.system_logs_stage_v1 s
     WHERE s.log_level IS NULL OR s.log_level NOT IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown level %; accepted: DEBUG, INFO, WARNING, ERROR, CRITICAL',
            quote_nullable(v_level) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH staged AS MATERIALIZED (  -- computed once per row, not once per reference
        SELECT s.id, s.source_type, s.source_id, s.log_level, s.logger_name, s.message,
               s.task_id, s.worker_id, s.cycle_number, s.correlation_id, s.exception,
               t.ts_in, m.meta,
               (t.ts_in < now() - interval '30 days' OR t.ts_in > now() + interval '1 hour') AS ts_far,
               CASE WHEN s.task_id ~ '^[0-9a-fA-F{}-]+$' AND length(translate(s.task_id, '-{}', '')) = 32
                    THEN translate(s.task_id, '-{}', '')::uuid END AS task_in,
               length(s.metadata) AS metadata_bytes
          FROM pg_temp.system_logs_stage_v1 s
          CROSS JOIN LATERAL (SELECT timestamptz 'epoch' + s.epoch_us * interval '1 microsecond' AS ts_in) t
          CROSS JOIN LATERAL (SELECT CASE WHEN length(s.metadata) > 65536 THEN '{}'::jsonb
                                          ELSE coalesce(s.metadata::jsonb, '{}'::jsonb) END AS meta) m
    ), inserted AS (
        INSERT INTO public.system_logs (
            id, "timestamp", source_type, source_id, log_level, severity_number, logger_name,
            message, task_id, worker_id, cycle_number, correlation_id, exception, metadata)
        SELECT
            s.id::uuid,
            CASE WHEN s.ts_far THEN now() ELSE s.ts_in END,
            left(s.source_type, 64),
            left(s.source_id, 255),
            s.log_level,
            CASE s.log_level WHEN 'DEBUG' THEN 5 WHEN 'INFO' THEN 9 WHEN 'WARNING' THEN 13
                             WHEN 'ERROR' THEN 17 WHEN 'CRITICAL' THEN 21 END,
            left(s.logger_name, 255),
            left(s.message, 32768),
            s.task_in,
            left(nullif(s.worker_id, ''), 255),
            s.cycle_number,
            left(nullif(s.correlation_id, ''), 128),
            left(s.exception, 65536),
            -- Repairs are noted only when there is one: concatenating jsonb re-encodes
            -- the whole value, which most rows need not pay for.
            CASE WHEN s.ts_far OR (s.task_id IS NOT NULL AND s.task_in IS NULL)
                      OR length(s.message) > 32768 OR length(s.exception) > 65536
                      OR s.metadata_bytes > 65536 OR jsonb_typeof(s.meta) <> 'object'
                 THEN CASE WHEN jsonb_typeof(s.meta) = 'object' THEN s.meta
                           ELSE jsonb_build_object('value', s.meta) END
                      || jsonb_build_object('_ingest', jsonb_strip_nulls(jsonb_build_object(
                        'timestamp_clamped_from', CASE WHEN s.ts_far THEN s.ts_in::text END,
                        'invalid_task_id', CASE WHEN s.task_in IS NULL THEN left(s.task_id, 200) END,
                        'message_truncated_from', CASE WHEN length(s.message) > 32768 THEN length(s.message) END,
                        'exception_truncated_from', CASE WHEN length(s.exception) > 65536 THEN length(s.exception) END,
                        'metadata_dropped_bytes', CASE WHEN s.metadata_bytes > 65536 THEN s.metadata_bytes END)))
                 ELSE s.meta END
          FROM staged s
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM pg_temp.system_logs_stage_v1)
      INTO v_inserted, v_staged;
    TRUNCATE pg_temp.system_logs_stage_v1;  -- a second batch in the same transaction starts empty
    RETURN jsonb_build_object('success', true, 'inserted', v_inserted,
                              'duplicates', v_staged - v_inserted, 'rejected', '[]'::jsonb);
END;
$$;
COMMENT ON FUNCTION public.func_insert_staged_logs() IS
    'Moves the rows COPYed into pg_temp.system_logs_stage_v1 into system_logs (ON CONFLICT DO NOTHING on ("timestamp", id)) with the repairs of func_insert_logs_batch. Returns {success, inserted, duplicates, rejected: []}. A row the table refuses (unknown level, malformed id) fails the call: the client splits the batch to isolate it.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_parse_log_timestamp(text)',
        'public.func_insert_logs_batch(jsonb)',
        'public.func_prepare_log_stage()',
        'public.func_insert_staged_logs()'
    ]::regprocedure[]);
