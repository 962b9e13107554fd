-- sql/functions/logs/ingest.sql
-- Writing logs: the RPC contract of the log store. psycopg, asyncpg, supabase-py's rpc()
-- and a person in the SQL editor all call these same functions, so they all get the
-- same rules (README "What the insert function accepts").
--   func_insert_logs_batch   a JSON array of entries (json, not jsonb: a NUL or a lone
--                            surrogate escape from any client is repaired per entry
--                            instead of failing the call at its parameter);
--   func_prepare_log_stage / func_insert_staged_logs
--                            the handler's fast path over a direct connection: binary
--                            COPY into a per-transaction staging table, then one
--                            INSERT ... ON CONFLICT DO NOTHING (parsing jsonb costs more
--                            per row than the insert itself, and COPY skips it). Works
--                            through PgBouncer/Supavisor in transaction mode:
--     BEGIN;
--     SELECT public.func_prepare_log_stage();
--     COPY pg_temp.system_logs_stage_v2 (...) FROM STDIN (FORMAT BINARY);
--     SELECT public.func_insert_staged_logs();
--     COMMIT;
-- ONE definition of the rules serves both: func_insert_logs_batch stages the entries of
-- its JSON array in the same table, and hub_internal.func_ingest_staged_logs() checks,
-- repairs and inserts whatever is staged. Both are idempotent on the client-supplied id:
-- a retried batch is counted as duplicates, not stored twice.

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

-- The reply of every insert path, shaped once: {success, inserted, duplicates, rejected:
-- [{index, reason}], errors} and, when the batch as a whole was refused, success false
-- with an error saying what is accepted. errors (the seed's handler counts refused
-- entries from it) is the number of entries not stored for another reason than being
-- duplicates: the rejected ones, or p_errors when the batch was refused whole.
CREATE OR REPLACE FUNCTION hub_internal.func_log_batch_reply(
    p_inserted integer, p_duplicates integer, p_rejected jsonb, p_error text DEFAULT NULL,
    p_errors integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object('success', p_error IS NULL, 'inserted', p_inserted,
                              'duplicates', p_duplicates, 'rejected', p_rejected,
                              'errors', coalesce(p_errors, jsonb_array_length(p_rejected)))
           || CASE WHEN p_error IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('error', p_error) END
$$;
COMMENT ON FUNCTION hub_internal.func_log_batch_reply(integer, integer, jsonb, text, integer) IS
    'The reply of the log insert functions: {success, inserted, duplicates, rejected, errors[, error]}.';

-- The staging table both entry points fill: one row per entry as the client sent it
-- (texts, so nothing is refused before the rules below see it), except the time, which
-- the handler sends as whole microseconds (epoch_us; exact) beside its own text.
CREATE OR REPLACE FUNCTION public.func_prepare_log_stage()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF to_regclass('pg_temp.system_logs_stage_v2') IS NULL THEN
        CREATE TEMP TABLE system_logs_stage_v2 (
            ord            integer,  -- the entry's index in its batch, for rejections
            id             text,
            ts_text        text,     -- the timestamp as the client wrote it
            epoch_us       bigint,   -- or Unix time in whole microseconds: exact
            source_type    text,
            source_id      text,
            log_level      text,
            logger_name    text,
            message        text,
            task_id        text,
            worker_id      text,
            cycle_number   text,
            correlation_id text,
            exception      text,
            metadata       jsonb,
            not_object     text      -- the JSON type of an entry that is not an object
        ) ON COMMIT DELETE ROWS;
        -- Large metadata out of line but never compressed: the 64 KiB limit is on its
        -- jsonb bytes (pg_column_size), which compression would hide.
        ALTER TABLE pg_temp.system_logs_stage_v2 ALTER COLUMN metadata SET STORAGE EXTERNAL;
    END IF;
END;
$$;
COMMENT ON FUNCTION public.func_prepare_log_stage() IS
    'Creates this connection''s staging table pg_temp.system_logs_stage_v2 (emptied at every commit) if it does not exist yet. Call at the start of each staged batch transaction.';

-- Metadata nested deeper than this many levels keeps its first levels; what is deeper
-- is stored as its JSON text (readers in any language then parse every row).
CREATE OR REPLACE FUNCTION hub_internal.func_jsonb_cut_depth(p_value jsonb, p_levels integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF jsonb_typeof(p_value) NOT IN ('object', 'array') THEN
        RETURN p_value;
    ELSIF p_levels <= 0 THEN
        RETURN to_jsonb(p_value::text);
    ELSIF jsonb_typeof(p_value) = 'object' THEN
        RETURN coalesce((SELECT jsonb_object_agg(e.key, hub_internal.func_jsonb_cut_depth(e.value, p_levels - 1))
                           FROM jsonb_each(p_value) AS e), '{}'::jsonb);
    END IF;
    RETURN coalesce((SELECT jsonb_agg(hub_internal.func_jsonb_cut_depth(e.value, p_levels - 1) ORDER BY e.ord)
                       FROM jsonb_array_elements(p_value) WITH ORDINALITY AS e(value, ord)), '[]'::jsonb);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_jsonb_cut_depth(jsonb, integer) IS
    'p_value with every container below p_levels levels replaced by its JSON text.';

-- THE rules, once, for whatever is staged (see README "What the insert function
-- accepts"):
--   rejected : not an object; message, level, source_type or source_id missing or
--              blank; unknown level; malformed id; malformed timestamp;
--   repaired : (noted under metadata._ingest, merged with an _ingest object the client
--              sent) message over 32 KiB and exception over 64 KiB truncated; metadata
--              over 64 KiB replaced; metadata that is not an object wrapped as
--              {"value": ...}; metadata nested deeper than 100 levels cut there (the
--              rest as text); malformed task_id or cycle_number dropped, the original
--              kept; timestamp missing, more than 30 days old or 1 hour ahead stored at
--              arrival time (the original kept).
-- Idempotent on the client's id: on ("timestamp", id) for entries with their own time,
-- on the id alone (system_log_server_timed_ids) for those stored at arrival time.
CREATE OR REPLACE FUNCTION hub_internal.func_ingest_staged_logs()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_valid integer;
    v_inserted integer;
    v_rejected jsonb;
BEGIN
    WITH parsed AS MATERIALIZED (  -- computed once per row, not once per reference
        SELECT s.*,
               upper(btrim(s.log_level)) AS level_in,
               CASE WHEN s.epoch_us IS NOT NULL
                    THEN timestamptz 'epoch' + s.epoch_us * interval '1 microsecond'
                    ELSE hub_internal.func_parse_log_timestamp(s.ts_text) END AS ts_in,
               -- A UUID is 32 hex digits; hyphens and braces are ignored. Checking the
               -- digits with length() and a short class regex is far cheaper in
               -- PostgreSQL than a pattern with counted repetitions.
               CASE WHEN s.id ~ '^[0-9a-fA-F{}-]+$' AND length(translate(s.id, '-{}', '')) = 32
                    THEN translate(s.id, '-{}', '')::uuid END AS id_in,
               CASE WHEN s.task_id ~ '^[0-9a-fA-F{}-]+$' AND length(translate(s.task_id, '-{}', '')) = 32
                    THEN translate(s.task_id, '-{}', '')::uuid END AS task_in,
               CASE WHEN s.cycle_number ~ '^\s*-?\d{1,10}\s*$' THEN
                    CASE WHEN btrim(s.cycle_number)::bigint BETWEEN -2147483648 AND 2147483647
                         THEN btrim(s.cycle_number)::integer END END AS cycle_in,
               pg_column_size(s.metadata) AS metadata_bytes
          FROM pg_temp.system_logs_stage_v2 s
    ), checked AS MATERIALIZED (
        SELECT p.*,
            CASE
                WHEN p.not_object IS NOT NULL THEN
                    format('entry must be a JSON object, got a JSON %s', p.not_object)
                WHEN p.message IS NULL THEN 'missing required key "message"'
                WHEN p.level_in IS NULL THEN 'missing required key "log_level" (or its alias "level")'
                WHEN p.level_in NOT IN ('DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL', 'FATAL') THEN
                    format('unknown level %s; accepted: DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL (or FATAL), in any case',
                           quote_literal(left(p.log_level, 40)))
                WHEN nullif(btrim(p.source_type), '') IS NULL THEN 'missing required key "source_type"'
                WHEN nullif(btrim(p.source_id), '') IS NULL THEN 'missing required key "source_id"'
                WHEN p.id IS NOT NULL AND p.id_in IS NULL THEN
                    format('malformed id %s; expected a UUID such as 0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a',
                           quote_literal(left(p.id, 64)))
                WHEN p.ts_text IS NOT NULL AND p.ts_in IS NULL THEN
                    format('malformed timestamp %s; expected ISO 8601 such as 2026-11-23T18:20:00.123Z (no zone means UTC) or Unix epoch seconds',
                           quote_literal(left(p.ts_text, 64)))
            END AS reason,
            (p.ts_in < now() - interval '30 days' OR p.ts_in > now() + interval '1 hour') AS ts_far,
            -- The deep check only where depth 100 fits: nesting costs bytes.
            (p.metadata_bytes > 700 AND jsonb_path_exists(p.metadata, 'strict $.**{100}')) AS too_deep
          FROM parsed p
    ), ready AS (
        SELECT c.*,
            (c.ts_in IS NULL OR c.ts_far) AS server_timed,
            CASE
                WHEN c.metadata_bytes > 65536 THEN '{}'::jsonb
                WHEN c.metadata IS NULL OR jsonb_typeof(c.metadata) = 'null' THEN '{}'::jsonb
                WHEN c.too_deep AND jsonb_typeof(c.metadata) = 'object' THEN hub_internal.func_jsonb_cut_depth(c.metadata, 100)
                WHEN c.too_deep THEN jsonb_build_object('value', hub_internal.func_jsonb_cut_depth(c.metadata, 99))
                WHEN jsonb_typeof(c.metadata) = 'object' THEN c.metadata
                ELSE jsonb_build_object('value', c.metadata)
            END AS meta,
            CASE WHEN c.ts_far
                      OR (c.task_id IS NOT NULL AND c.task_in IS NULL)
                      OR (c.cycle_number IS NOT NULL AND c.cycle_in IS NULL)
                      OR length(c.message) > 32768 OR length(c.exception) > 65536
                      OR c.metadata_bytes > 65536 OR c.too_deep
                 THEN jsonb_strip_nulls(jsonb_build_object(
                        'timestamp_clamped_from', CASE WHEN c.ts_far THEN coalesce(c.ts_text, c.ts_in::text) END,
                        'invalid_task_id', CASE WHEN c.task_in IS NULL THEN left(c.task_id, 200) END,
                        'invalid_cycle_number', CASE WHEN c.cycle_in IS NULL THEN left(c.cycle_number, 200) END,
                        'message_truncated_from', CASE WHEN length(c.message) > 32768 THEN length(c.message) END,
                        'exception_truncated_from', CASE WHEN length(c.exception) > 65536 THEN length(c.exception) END,
                        'metadata_dropped_bytes', CASE WHEN c.metadata_bytes > 65536 THEN c.metadata_bytes END,
                        'metadata_nested_deeper_than', CASE WHEN c.too_deep AND c.metadata_bytes <= 65536 THEN 100 END))
            END AS notes
          FROM checked c
         WHERE c.reason IS NULL
    ), fresh_ids AS (  -- server-timed entries with an id: new ids only
        INSERT INTO public.system_log_server_timed_ids AS t (id, "timestamp")
        SELECT r.id_in, now() FROM ready r WHERE r.server_timed AND r.id_in IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING t.id
    ), inserted AS (
        INSERT INTO public.system_logs AS s (
            id, "timestamp", source_type, source_id, log_level, severity_number, logger_name,
            message, task_id, worker_id, cycle_number, correlation_id, exception, metadata)
        SELECT
            coalesce(r.id_in, hub_internal.func_uuid_v7(coalesce(r.ts_in, now()))),
            CASE WHEN r.server_timed THEN now() ELSE r.ts_in END,
            left(btrim(r.source_type), 64),
            left(btrim(r.source_id), 255),
            CASE r.level_in WHEN 'WARN' THEN 'WARNING' WHEN 'FATAL' THEN 'CRITICAL' ELSE r.level_in END,
            CASE r.level_in WHEN 'DEBUG' THEN 5 WHEN 'INFO' THEN 9 WHEN 'WARNING' THEN 13
                            WHEN 'WARN' THEN 13 WHEN 'ERROR' THEN 17 ELSE 21 END,
            left(r.logger_name, 255),
            left(r.message, 32768),
            r.task_in,
            left(nullif(r.worker_id, ''), 255),
            r.cycle_in,
            left(nullif(r.correlation_id, ''), 128),
            left(r.exception, 65536),
            -- Repairs are noted only when there is one: concatenating jsonb re-encodes
            -- the whole value, which most rows need not pay for.
            CASE WHEN r.notes IS NULL THEN r.meta
                 ELSE r.meta || jsonb_build_object('_ingest',
                        CASE WHEN jsonb_typeof(r.meta -> '_ingest') = 'object' THEN r.meta -> '_ingest'
                             ELSE '{}'::jsonb END || r.notes) END
          FROM ready r
         WHERE NOT r.server_timed OR r.id_in IS NULL OR r.id_in IN (SELECT f.id FROM fresh_ids f)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted),
           (SELECT count(*) FROM checked WHERE reason IS NULL),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('index', ord, 'reason', reason) ORDER BY ord), '[]'::jsonb)
              FROM checked WHERE reason IS NOT NULL)
      INTO v_inserted, v_valid, v_rejected;
    DELETE FROM pg_temp.system_logs_stage_v2;  -- a second batch in the same transaction starts empty
    RETURN hub_internal.func_log_batch_reply(v_inserted, v_valid - v_inserted, v_rejected);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_ingest_staged_logs() IS
    'The ingest rules, once: checks, repairs and inserts the rows of pg_temp.system_logs_stage_v2 (func_insert_logs_batch and func_insert_staged_logs both stage there), idempotent on the client id. Returns {success, inserted, duplicates, rejected: [{index, reason}]}.';

-- JSON text to jsonb for the insert functions, repairing what jsonb cannot hold: each
-- \u0000 escape and each lone UTF-16 surrogate escape becomes \ufffd (U+FFFD), so one
-- such entry from any client (supabase-js, the SQL editor, PostgREST) costs nothing but
-- that character. Nesting is no concern here: jsonb parses as deep as json does, and
-- json already parsed this text (its parameter).
CREATE OR REPLACE FUNCTION hub_internal.func_logs_jsonb(p_logs json)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_text text := p_logs::text;
BEGIN
    -- strpos first: a scan for two bytes, far cheaper than the regex over a batch.
    IF strpos(v_text, '\u') > 0 AND v_text ~ '\\u(0000|[dD][89a-fA-F])' THEN
        -- An escape is a backslash not itself escaped: an even run of them before it.
        v_text := regexp_replace(v_text, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g');
        v_text := regexp_replace(v_text,
            '(?<!\\)((?:\\\\)*)\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})',
            '\1\\ufffd', 'g');
        v_text := regexp_replace(v_text,
            '(?<!\\u[dD][89abAB][0-9a-fA-F]{2})(?<!\\)((?:\\\\)*)\\u[dD][c-fC-F][0-9a-fA-F]{2}',
            '\1\\ufffd', 'g');
    END IF;
    RETURN v_text::jsonb;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_logs_jsonb(json) IS
    'JSON to jsonb with \u0000 and lone surrogate escapes replaced by \ufffd.';

-- Stages a JSON array of entries and applies the rules: the body of both
-- func_insert_logs_batch and the heartbeat's log part.
CREATE OR REPLACE FUNCTION hub_internal.func_insert_log_entries(p_logs jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_logs jsonb := p_logs;
    v_count integer;
BEGIN
    IF p_logs IS NULL OR jsonb_typeof(p_logs) <> 'array' THEN
        RETURN hub_internal.func_log_batch_reply(0, 0, '[]', format(
            'logs must be a JSON array of log entry objects, got %s',
            coalesce('a JSON ' || jsonb_typeof(p_logs), 'SQL NULL')), 1);
    END IF;
    v_count := jsonb_array_length(p_logs);
    IF v_count = 0 THEN
        RETURN hub_internal.func_log_batch_reply(0, 0, '[]');
    END IF;
    IF v_count > 10000 THEN
        RETURN hub_internal.func_log_batch_reply(0, 0, '[]', format(
            'a batch holds at most 10000 entries, got %s; split it', v_count), v_count);
    END IF;
    -- Rare case: entries that are not objects are swapped for a marker object, so the
    -- fast jsonb_to_recordset() below can read every entry in one pass.
    IF jsonb_path_exists(p_logs, 'strict $[*] ? (@.type() != "object")') THEN
        SELECT jsonb_agg(CASE WHEN jsonb_typeof(e.value) = 'object' THEN e.value
                              ELSE jsonb_build_object('$not_object', jsonb_typeof(e.value)) END
                         ORDER BY e.ord)
          INTO v_logs
          FROM jsonb_array_elements(p_logs) WITH ORDINALITY AS e(value, ord);
    END IF;
    PERFORM public.func_prepare_log_stage();
    INSERT INTO pg_temp.system_logs_stage_v2 (
        ord, id, ts_text, source_type, source_id, log_level, logger_name, message, task_id,
        worker_id, cycle_number, correlation_id, exception, metadata, not_object)
    SELECT (r.ord - 1)::integer, r.id, r."timestamp", r.source_type, r.source_id,
           coalesce(r.log_level, r.level), r.logger_name, r.message, r.task_id, r.worker_id,
           r.cycle_number, r.correlation_id, r.exception, r.metadata, r."$not_object"
      FROM ROWS FROM (jsonb_to_recordset(v_logs)
             AS (id text, "timestamp" text, log_level text, level text, source_type text,
                 source_id text, message text, task_id text, worker_id text,
                 cycle_number text, metadata jsonb, logger_name text, correlation_id text,
                 exception text, "$not_object" text))
           WITH ORDINALITY
        AS r(id, "timestamp", log_level, level, source_type, source_id, message, task_id,
             worker_id, cycle_number, metadata, logger_name, correlation_id, exception,
             "$not_object", ord);
    RETURN hub_internal.func_ingest_staged_logs();
END;
$$;
COMMENT ON FUNCTION hub_internal.func_insert_log_entries(jsonb) IS
    'Stages a jsonb array of log entries and inserts them with hub_internal.func_ingest_staged_logs(); the body of func_insert_logs_batch and of the heartbeat''s log part.';

CREATE OR REPLACE FUNCTION public.func_insert_logs_batch(logs json)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN hub_internal.func_insert_log_entries(hub_internal.func_logs_jsonb(logs));
END;
$$;
COMMENT ON FUNCTION public.func_insert_logs_batch(json) IS
    'Inserts a JSON array of log entries (keys: id, timestamp, log_level or level, source_type, source_id, message, task_id, worker_id, cycle_number, metadata, logger_name, correlation_id, exception). Returns {success, inserted, duplicates, rejected: [{index, reason}], errors}; bad entries are rejected alone, NUL and lone surrogate escapes become U+FFFD, retries of the same id are counted as duplicates; errors counts the entries not stored for another reason (the rejected ones; every entry of a batch refused whole; 1 for logs that is not an array), as the seed''s log handler reads it.';

CREATE OR REPLACE FUNCTION public.func_insert_staged_logs()
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT hub_internal.func_ingest_staged_logs()
$$;
COMMENT ON FUNCTION public.func_insert_staged_logs() IS
    'Moves the rows COPYed into pg_temp.system_logs_stage_v2 into system_logs with the rules of func_insert_logs_batch (the same function applies them). Returns {success, inserted, duplicates, rejected: [{index, reason}]} with index = the staged ord.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_parse_log_timestamp(text)',
        'hub_internal.func_log_batch_reply(integer, integer, jsonb, text, integer)',
        'hub_internal.func_jsonb_cut_depth(jsonb, integer)',
        'hub_internal.func_ingest_staged_logs()',
        'hub_internal.func_logs_jsonb(json)',
        'hub_internal.func_insert_log_entries(jsonb)',
        'public.func_insert_logs_batch(json)',
        'public.func_prepare_log_stage()',
        'public.func_insert_staged_logs()'
    ]::regprocedure[]);
