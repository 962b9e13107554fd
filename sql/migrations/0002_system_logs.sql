-- 0002_system_logs.sql
-- The log store: one table range-partitioned by day (UTC) on "timestamp".
--   * Retention drops whole partitions, so its cost does not grow with the row count.
--   * A DEFAULT partition catches any row whose day has no partition yet, so no insert
--     ever fails; func_maintain_log_partitions() (sql/functions/logs/partitions.sql)
--     creates days ahead and moves such rows out of the default partition into the day
--     they belong to.
--   * The primary key ("timestamp", id) doubles as the time index and as the
--     idempotency key: a retried batch carries the same (timestamp, id) pairs and
--     ON CONFLICT DO NOTHING skips them. Time-ordered (UUIDv7) ids keep it append-only.

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
-- the partitions in the time window, which the time filter keeps small. The hub
-- installs pg_trgm into the extensions schema; one installed before it is used where
-- it is.
DO $$
DECLARE
    v_schema text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA extensions;
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
-- for rows that arrive without a client id and the defaults of the job tables (so it
-- lives here, with the tables, and not in sql/functions/). Clients should send their own, made the
-- same way, so that a retried batch is recognised as a duplicate.
CREATE OR REPLACE FUNCTION hub_internal.func_uuid_v7(p_at timestamptz DEFAULT clock_timestamp())
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
COMMENT ON FUNCTION hub_internal.func_uuid_v7(timestamptz) IS
    'UUID version 7 for the given instant: ids sort by time, so the primary key index stays append-only.';

SELECT hub_internal.func_hub_secure(
    p_tables => ARRAY['public.system_logs', 'public.system_logs_default']::regclass[],
    p_functions => ARRAY['hub_internal.func_uuid_v7(timestamptz)']::regprocedure[]);
SELECT hub_internal.func_hub_service_role_policy('public.system_logs');
