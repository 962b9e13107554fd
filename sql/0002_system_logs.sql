-- 0002_system_logs.sql
-- The log store: one table range-partitioned by day (UTC) on "timestamp".
--   * Retention drops whole partitions, so its cost does not grow with the row count.
--   * A DEFAULT partition catches any row whose day has no partition yet, so no insert
--     ever fails; func_maintain_log_partitions() creates days ahead and moves such rows
--     out of the default partition into the day they belong to.
--   * The primary key ("timestamp", id) doubles as the time index and as the
--     idempotency key: a retried batch carries the same (timestamp, id) pairs and
--     ON CONFLICT DO NOTHING skips them. Time-ordered (UUIDv7) ids keep it append-only.
-- Idempotent: safe to run again in the SQL editor or with psql -v ON_ERROR_STOP=1 -f.

CREATE TABLE IF NOT EXISTS public.system_logs (
    id              uuid        NOT NULL,
    "timestamp"     timestamptz NOT NULL,
    observed_at     timestamptz NOT NULL DEFAULT now(),
    source_type     text        NOT NULL,
    source_id       text        NOT NULL,
    log_level       text        NOT NULL
        CHECK (log_level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    severity_number smallint    NOT NULL CHECK (severity_number BETWEEN 1 AND 24),
    logger_name     text,
    message         text        NOT NULL,
    task_id         uuid,
    worker_id       text,
    cycle_number    integer,
    correlation_id  text,
    exception       text,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY ("timestamp", id)
) PARTITION BY RANGE ("timestamp");

CREATE TABLE IF NOT EXISTS public.system_logs_default
    PARTITION OF public.system_logs DEFAULT;

COMMENT ON TABLE public.system_logs IS
    'Every log line of the orchestrator and its workers. Partitioned by UTC day on "timestamp"; write through func_insert_logs_batch(), expire through func_cleanup_old_logs().';
COMMENT ON COLUMN public.system_logs."timestamp" IS 'When the record was made, by the client''s clock (UTC).';
COMMENT ON COLUMN public.system_logs.observed_at IS 'When the database received the record (server clock).';
COMMENT ON COLUMN public.system_logs.severity_number IS 'OpenTelemetry severity: DEBUG 5, INFO 9, WARNING 13, ERROR 17, CRITICAL 21.';
COMMENT ON COLUMN public.system_logs.metadata IS 'Free-form JSON object; the key _ingest notes any repair made on arrival (truncation, clamped timestamp, invalid task_id).';

-- Indexes, one per read path (all partial where the column is often NULL).
-- Time range and keyset pagination: the primary key ("timestamp", id).
CREATE INDEX IF NOT EXISTS system_logs_worker_time_idx
    ON public.system_logs (worker_id, "timestamp") WHERE worker_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS system_logs_task_time_idx
    ON public.system_logs (task_id, "timestamp") WHERE task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS system_logs_source_time_idx
    ON public.system_logs (source_type, source_id, "timestamp");
CREATE INDEX IF NOT EXISTS system_logs_errors_time_idx
    ON public.system_logs ("timestamp") WHERE severity_number >= 17;
CREATE INDEX IF NOT EXISTS system_logs_cycle_time_idx
    ON public.system_logs (cycle_number, "timestamp") WHERE cycle_number IS NOT NULL;

-- Message search: a trigram index where pg_trgm can be had (Supabase, most servers);
-- elsewhere (the embedded server ships only plpgsql) searches fall back to a scan of
-- the partitions in the time window, which the time filter keeps small.
DO $$
DECLARE
    v_schema text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm is available but this role may not create it; message search will not be index-backed';
        END;
    END IF;
    SELECT n.nspname INTO v_schema
      FROM pg_opclass o JOIN pg_namespace n ON n.oid = o.opcnamespace
     WHERE o.opcname = 'gin_trgm_ops';
    IF v_schema IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS system_logs_message_trgm_idx ON public.system_logs USING gin (message %I.gin_trgm_ops)',
            v_schema);
    END IF;
END;
$$;

-- A time-ordered UUID (version 7 layout: 48-bit Unix milliseconds, then random bits),
-- for rows that arrive without a client id. Clients should send their own, made the
-- same way, so that a retried batch is recognised as a duplicate.
CREATE OR REPLACE FUNCTION public.func_uuid_v7(p_at timestamptz DEFAULT clock_timestamp())
RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send((extract(epoch FROM p_at) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
COMMENT ON FUNCTION public.func_uuid_v7(timestamptz) IS
    'UUID version 7 for the given instant: ids sort by time, so the primary key index stays append-only.';

-- Parses a client timestamp without ever raising: ISO 8601 / RFC 3339 with a time
-- (a missing zone means UTC) or Unix epoch seconds. Returns NULL for anything else,
-- so one malformed entry is rejected alone instead of failing its batch. A loose shape
-- regex (cheap in PostgreSQL's engine) fixes where every field is; integer range checks
-- on those positions do the rest. Every cast sits behind a CASE that proved it safe.
CREATE OR REPLACE FUNCTION public.func_parse_log_timestamp(p_text text)
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
COMMENT ON FUNCTION public.func_parse_log_timestamp(text) IS
    'ISO 8601 (2026-11-23T18:20:00.123Z; no zone = UTC) or Unix epoch seconds to timestamptz; NULL when malformed. Never raises.';

-- Creates the daily partitions from days_behind before today to days_ahead after it
-- (UTC), moving any rows the DEFAULT partition holds for those days into them. Safe to
-- run concurrently (an advisory lock serialises it) and as often as you like.
-- SECURITY DEFINER because service_role, which runs it from the daemon, does not own
-- the table; the search_path is fixed.
CREATE OR REPLACE FUNCTION public.func_maintain_log_partitions(
    days_ahead integer DEFAULT 3,
    days_behind integer DEFAULT 1
) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_day date;
    v_name text;
    v_from timestamptz;
    v_to timestamptz;
    v_moved bigint;
    v_moved_total bigint := 0;
    v_created text[] := '{}';
BEGIN
    IF days_ahead IS NULL OR days_ahead NOT BETWEEN 0 AND 366 THEN
        RAISE EXCEPTION 'days_ahead must be between 0 and 366, got %', days_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF days_behind IS NULL OR days_behind NOT BETWEEN 0 AND 366 THEN
        RAISE EXCEPTION 'days_behind must be between 0 and 366, got %', days_behind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('orchestrator_hub.system_logs.partitions'));

    FOR v_day IN
        SELECT d::date FROM generate_series(v_today - days_behind, v_today + days_ahead, interval '1 day') AS d
    LOOP
        v_name := 'system_logs_p' || to_char(v_day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(format('public.%I', v_name)) IS NOT NULL;
        v_from := v_day::timestamp AT TIME ZONE 'UTC';
        v_to := (v_day + 1)::timestamp AT TIME ZONE 'UTC';
        -- Build the day standalone, move its rows out of the default partition, then
        -- attach: ATTACH takes a weaker lock on the parent than CREATE ... PARTITION OF,
        -- so concurrent inserts into other days are not blocked.
        EXECUTE format('CREATE TABLE public.%I (LIKE public.system_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
        EXECUTE format(
            'WITH moved AS (DELETE FROM public.system_logs_default WHERE "timestamp" >= $1 AND "timestamp" < $2 RETURNING *) '
            'INSERT INTO public.%I SELECT * FROM moved', v_name)
            USING v_from, v_to;
        GET DIAGNOSTICS v_moved = ROW_COUNT;
        v_moved_total := v_moved_total + v_moved;
        EXECUTE format('ALTER TABLE public.system_logs ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_from, v_to);
        PERFORM public.func_hub_secure(p_tables => ARRAY[format('public.%I', v_name)::regclass]);
        v_created := v_created || v_name;
    END LOOP;

    RETURN jsonb_build_object('success', true, 'created', to_jsonb(v_created),
                              'moved_from_default', v_moved_total);
END;
$$;
COMMENT ON FUNCTION public.func_maintain_log_partitions(integer, integer) IS
    'Creates the daily partitions of system_logs from days_behind before to days_ahead after today (UTC) and moves rows out of the default partition into them. Returns {success, created, moved_from_default}. Idempotent; run it hourly (pg_cron or the daemon).';

SELECT public.func_hub_secure(
    p_tables => ARRAY['public.system_logs', 'public.system_logs_default']::regclass[],
    p_functions => ARRAY[
        'public.func_uuid_v7(timestamptz)',
        'public.func_parse_log_timestamp(text)',
        'public.func_maintain_log_partitions(integer, integer)'
    ]::regprocedure[]);
SELECT public.func_hub_service_role_policy('public.system_logs');
SELECT public.func_maintain_log_partitions();
