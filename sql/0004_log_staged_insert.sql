-- 0004_log_staged_insert.sql
-- The fast path of the log handler over a direct connection: binary COPY into a
-- per-transaction staging table, then one INSERT ... ON CONFLICT DO NOTHING into
-- system_logs. Measured in bench/ingest.py: parsing jsonb costs more per row than the
-- insert itself, and COPY skips it. Same rules as func_insert_logs_batch for what can
-- still be wrong in typed rows (clock far off, oversized text, malformed task_id), same
-- idempotency on ("timestamp", id). Works through PgBouncer/Supavisor in transaction
-- mode: the staging table is created per server connection on first use, emptied at
-- every commit, and each batch runs in one transaction. Its name carries its version
-- (_v1): a pooled server session outlives client connections and deploys, so a later
-- shape gets a new name instead of meeting the old table.
--   BEGIN;
--   SELECT public.func_prepare_log_stage();
--   COPY pg_temp.system_logs_stage_v1 (...) FROM STDIN (FORMAT BINARY);
--   SELECT public.func_insert_staged_logs();
--   COMMIT;
-- Idempotent: safe to run again in the SQL editor or with psql -v ON_ERROR_STOP=1 -f.

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

SELECT public.func_hub_secure(
    p_functions => ARRAY[
        'public.func_prepare_log_stage()',
        'public.func_insert_staged_logs()'
    ]::regprocedure[]);
