-- sql/functions/workers/heartbeat.sql
-- The workers' heartbeat, which carries their logs (table in sql/migrations/0004).
-- What the seed got wrong, and what this does instead:
--   * its heartbeat read the row, changed it in the client and wrote it back, so two
--     beats could lose one another's update -> the row is upserted in ONE statement
--     (INSERT ... ON CONFLICT DO UPDATE), counters and metadata merged by the database;
--   * a failing log part failed the heartbeat (and the logs were lost) -> the logs go
--     through func_insert_logs_batch's rules (hub_internal.func_insert_log_entries, after
--     the same repair of NUL and lone surrogate escapes; logs is json, not jsonb, so
--     such text cannot fail the call at its parameter) inside one subtransaction per
--     heartbeat: a bad
--     entry is rejected alone, an unexpected error is reported in the reply, and the
--     heartbeat itself always lands;
--   * it was SECURITY DEFINER and open to anon -> an ordinary function, executable by
--     service_role only.

-- Parameters have no p_ prefix: they are the RPC's public argument names (supabase-py's
-- rpc() and PostgREST pass them by name). Inside, they are copied into v_ variables and
-- "#variable_conflict use_column" makes every unqualified name in SQL a column.
CREATE OR REPLACE FUNCTION public.func_worker_heartbeat_with_logs(
    worker_id text,
    status text DEFAULT 'idle',
    current_task_id uuid DEFAULT NULL,
    metadata jsonb DEFAULT '{}'::jsonb,
    logs json DEFAULT '[]'::json
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_worker_id text := func_worker_heartbeat_with_logs.worker_id;
    v_status text := lower(btrim(func_worker_heartbeat_with_logs.status));
    v_task_id uuid := func_worker_heartbeat_with_logs.current_task_id;
    v_metadata jsonb := coalesce(func_worker_heartbeat_with_logs.metadata, '{}'::jsonb);
    v_logs jsonb;
    v_metadata_bytes integer;
    v_hostname text;
    v_vram_total integer;
    v_vram_used integer;
    v_log_result jsonb;
    v_error text;
    v_state text;
    v_row record;
BEGIN
    -- Caller bugs fail the heartbeat, loudly, before anything is written.
    IF v_worker_id IS NULL OR btrim(v_worker_id) = '' OR length(v_worker_id) > 255 THEN
        RAISE EXCEPTION 'worker_id must be a non-blank text of at most 255 characters, got %',
                        coalesce(quote_literal(left(v_worker_id, 300)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_status IS NULL OR v_status NOT IN ('starting', 'idle', 'busy', 'draining', 'stopped', 'dead') THEN
        RAISE EXCEPTION 'unknown worker status %; accepted: starting, idle, busy, draining, stopped, dead',
                        coalesce(quote_literal(left(func_worker_heartbeat_with_logs.status, 40)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(v_metadata) = 'null' THEN
        v_metadata := '{}'::jsonb;
    ELSIF jsonb_typeof(v_metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object, got a JSON %', jsonb_typeof(v_metadata)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The seed's VRAM and host fields get columns of their own (numbers or numeric
    -- strings; anything else, negative or beyond integer range is ignored, never raised).
    v_hostname := CASE WHEN jsonb_typeof(v_metadata -> 'hostname') = 'string'
                       THEN left(nullif(btrim(v_metadata ->> 'hostname'), ''), 255) END;
    v_vram_total := CASE
        WHEN jsonb_typeof(v_metadata -> 'vram_total_mb') = 'number'
             OR (v_metadata ->> 'vram_total_mb') ~ '^\s*\d{1,12}(\.\d*)?\s*$' THEN
            CASE WHEN round((v_metadata ->> 'vram_total_mb')::numeric) BETWEEN 0 AND 2147483647
                 THEN round((v_metadata ->> 'vram_total_mb')::numeric)::integer END END;
    v_vram_used := CASE
        WHEN jsonb_typeof(v_metadata -> 'vram_used_mb') = 'number'
             OR (v_metadata ->> 'vram_used_mb') ~ '^\s*\d{1,12}(\.\d*)?\s*$' THEN
            CASE WHEN round((v_metadata ->> 'vram_used_mb')::numeric) BETWEEN 0 AND 2147483647
                 THEN round((v_metadata ->> 'vram_used_mb')::numeric)::integer END END;
    v_metadata_bytes := pg_column_size(v_metadata);
    IF v_metadata_bytes > 65536 THEN
        v_metadata := jsonb_build_object('_ingest', jsonb_build_object('metadata_dropped_bytes', v_metadata_bytes));
    END IF;

    -- The logs first, so the worker row below stays locked only for its own statement.
    -- One subtransaction per heartbeat (not per row): whatever goes wrong in here is
    -- rolled back alone and reported, and the heartbeat goes on.
    BEGIN
        -- NUL and lone surrogate escapes repaired, like func_insert_logs_batch does.
        v_logs := hub_internal.func_logs_jsonb(coalesce(func_worker_heartbeat_with_logs.logs, '[]'::json));
        IF jsonb_typeof(v_logs) = 'array' AND jsonb_array_length(v_logs) BETWEEN 1 AND 10000 THEN
            -- Defaults for what a worker's entry leaves out (missing or JSON null); the
            -- entry's own values win. Non-objects pass through for the batch function to
            -- reject with its reason.
            SELECT jsonb_agg(
                       CASE WHEN jsonb_typeof(e.value) = 'object' THEN
                           e.value || jsonb_build_object(
                               'source_type', coalesce(nullif(e.value -> 'source_type', 'null'::jsonb), to_jsonb('worker'::text)),
                               'source_id', coalesce(nullif(e.value -> 'source_id', 'null'::jsonb), to_jsonb(v_worker_id)),
                               'worker_id', coalesce(nullif(e.value -> 'worker_id', 'null'::jsonb), to_jsonb(v_worker_id)),
                               'task_id', coalesce(nullif(e.value -> 'task_id', 'null'::jsonb), to_jsonb(v_task_id)))
                       ELSE e.value END
                       ORDER BY e.ord)
              INTO v_logs
              FROM jsonb_array_elements(v_logs) WITH ORDINALITY AS e(value, ord);
        END IF;
        v_log_result := hub_internal.func_insert_log_entries(v_logs);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
        v_log_result := hub_internal.func_log_batch_reply(0, 0, '[]', format(
            'the logs of this heartbeat were not stored: %s (SQLSTATE %s)', v_error, v_state),
            CASE WHEN jsonb_typeof(v_logs) = 'array' THEN jsonb_array_length(v_logs) ELSE 1 END);
    END;

    -- One statement, no read-modify-write: concurrent heartbeats of one worker queue on
    -- the row lock and each sees the other's committed count and metadata.
    INSERT INTO public.workers AS w (
        worker_id, status, current_task_id, hostname, vram_total_mb, vram_used_mb,
        metadata, first_seen_at, last_heartbeat_at, heartbeat_count)
    VALUES (v_worker_id, v_status, v_task_id, v_hostname, v_vram_total, v_vram_used,
            v_metadata, now(), now(), 1)
    ON CONFLICT (worker_id) DO UPDATE SET
        status = EXCLUDED.status,
        current_task_id = EXCLUDED.current_task_id,
        hostname = coalesce(EXCLUDED.hostname, w.hostname),
        vram_total_mb = coalesce(EXCLUDED.vram_total_mb, w.vram_total_mb),
        vram_used_mb = coalesce(EXCLUDED.vram_used_mb, w.vram_used_mb),
        metadata = CASE WHEN pg_column_size(w.metadata || EXCLUDED.metadata) > 65536
                        THEN EXCLUDED.metadata ELSE w.metadata || EXCLUDED.metadata END,
        last_heartbeat_at = greatest(w.last_heartbeat_at, now()),
        heartbeat_count = w.heartbeat_count + 1
    RETURNING w.worker_id, w.status, w.heartbeat_count, w.last_heartbeat_at INTO v_row;

    RETURN jsonb_build_object(
        'success', true,
        'worker', jsonb_build_object(
            'worker_id', v_row.worker_id,
            'status', v_row.status,
            'heartbeat_count', v_row.heartbeat_count,
            'last_heartbeat_at', v_row.last_heartbeat_at),
        'logs', v_log_result);
END;
$$;
COMMENT ON FUNCTION public.func_worker_heartbeat_with_logs(text, text, uuid, jsonb, json) IS
    'A worker''s heartbeat: upserts its workers row in one statement (status, current_task_id, metadata merged, hostname/vram_total_mb/vram_used_mb taken from metadata, heartbeat_count + 1) and inserts the log entries it carries through func_insert_logs_batch (defaults: source_type worker, source_id and worker_id = worker_id, task_id = current_task_id). Returns {success, worker: {worker_id, status, heartbeat_count, last_heartbeat_at}, logs: {success, inserted, duplicates, rejected, error?}}. Raises invalid_parameter_value for a blank worker_id, an unknown status or non-object metadata; a failure of the log part never fails the heartbeat.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_worker_heartbeat_with_logs(text, text, uuid, jsonb, json)'
    ]::regprocedure[]);
