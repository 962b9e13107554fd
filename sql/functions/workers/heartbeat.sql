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
-- The seed's own workers call it by other argument names and with other statuses: see
-- the overload and func_update_worker_heartbeat at the end of this file.

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
    -- The seed's statuses in the hub's words: a worker that crashed is dead.
    v_status text := CASE lower(btrim(func_worker_heartbeat_with_logs.status))
                         WHEN 'active' THEN 'idle' WHEN 'inactive' THEN 'stopped'
                         WHEN 'terminated' THEN 'stopped' WHEN 'crashed' THEN 'dead'
                         ELSE lower(btrim(func_worker_heartbeat_with_logs.status)) END;
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
    v_released jsonb;
BEGIN
    -- Caller bugs fail the heartbeat, loudly, before anything is written.
    IF v_worker_id IS NULL OR btrim(v_worker_id) = '' OR length(v_worker_id) > 255 THEN
        RAISE EXCEPTION 'worker_id must be a non-blank text of at most 255 characters, got %',
                        coalesce(quote_literal(left(v_worker_id, 300)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_status IS NULL OR v_status NOT IN ('starting', 'idle', 'busy', 'draining', 'stopped', 'dead') THEN
        RAISE EXCEPTION 'unknown worker status %; accepted: starting, idle, busy, draining, stopped, dead (and the seed''s active, inactive, terminated, crashed)',
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

    -- A worker that says it is dead (the seed's "crashed") gets its jobs released now,
    -- as the reaper would release them once its heartbeat went stale.
    IF v_status = 'dead' THEN
        v_released := hub_internal.func_job_release_lost(v_worker_id);
    END IF;

    RETURN jsonb_build_object(
        'success', true,
        'worker', jsonb_build_object(
            'worker_id', v_row.worker_id,
            'status', v_row.status,
            'heartbeat_count', v_row.heartbeat_count,
            'last_heartbeat_at', v_row.last_heartbeat_at),
        'logs', v_log_result)
        || CASE WHEN v_released IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('released_jobs', v_released) END;
END;
$$;
COMMENT ON FUNCTION public.func_worker_heartbeat_with_logs(text, text, uuid, jsonb, json) IS
    'A worker''s heartbeat: upserts its workers row in one statement (status, current_task_id, metadata merged, hostname/vram_total_mb/vram_used_mb taken from metadata, heartbeat_count + 1) and inserts the log entries it carries through func_insert_logs_batch (defaults: source_type worker, source_id and worker_id = worker_id, task_id = current_task_id). Statuses: starting, idle, busy, draining, stopped, dead, and the seed''s active (idle), inactive and terminated (stopped), crashed (dead); a dead beat releases the worker''s running jobs at once as func_reap_dead_workers would (released_jobs: {requeued, failed, job_ids}). Returns {success, worker: {worker_id, status, heartbeat_count, last_heartbeat_at}, logs: {success, inserted, duplicates, rejected, errors, error?}, released_jobs?}. Raises invalid_parameter_value for a blank worker_id, an unknown status or non-object metadata; a failure of the log part never fails the heartbeat.';

-- The seed's own workers, unchanged: the same heartbeat under the seed's argument names
-- (POST /rest/v1/rpc/func_worker_heartbeat_with_logs with {worker_id_param,
-- vram_total_mb_param, vram_used_mb_param, logs_param, status_param}). PostgREST picks an
-- overload by the set of argument names it is given: no name is shared with the hub's
-- overload above and each needs its worker id, so every call fits exactly one of them
-- (tests/integration/test_seed_workers.py tries every shape). worker_id_param is
-- varchar, not text, for callers by position in SQL: an untyped literal prefers text, so
-- func_worker_heartbeat_with_logs('gpu-1') is the hub's overload, not an ambiguity.
CREATE OR REPLACE FUNCTION public.func_worker_heartbeat_with_logs(
    worker_id_param varchar,
    vram_total_mb_param integer DEFAULT NULL,
    vram_used_mb_param integer DEFAULT NULL,
    logs_param json DEFAULT '[]'::json,
    status_param text DEFAULT 'active'
) RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT public.func_worker_heartbeat_with_logs(
        worker_id => worker_id_param::text,
        status => coalesce(status_param, 'active'),
        metadata => jsonb_strip_nulls(jsonb_build_object(
            'vram_total_mb', vram_total_mb_param, 'vram_used_mb', vram_used_mb_param)),
        logs => logs_param)
$$;
COMMENT ON FUNCTION public.func_worker_heartbeat_with_logs(varchar, integer, integer, json, text) IS
    'The seed orchestrator''s heartbeat, as its workers call it: func_worker_heartbeat_with_logs(worker_id => worker_id_param, status => status_param (default active), metadata => {vram_total_mb, vram_used_mb}, logs => logs_param), with everything that function promises; log entries may name their level "level". Returns what it returns.';

-- The seed's heartbeat without logs.
CREATE OR REPLACE FUNCTION public.func_update_worker_heartbeat(
    worker_id_param text,
    vram_total_mb_param integer DEFAULT NULL,
    vram_used_mb_param integer DEFAULT NULL,
    status_param text DEFAULT 'active'
) RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT public.func_worker_heartbeat_with_logs(
        worker_id_param => worker_id_param::varchar,
        vram_total_mb_param => vram_total_mb_param,
        vram_used_mb_param => vram_used_mb_param,
        status_param => status_param)
$$;
COMMENT ON FUNCTION public.func_update_worker_heartbeat(text, integer, integer, text) IS
    'The seed orchestrator''s heartbeat without logs: its func_worker_heartbeat_with_logs with no logs_param (status_param defaults to active). Returns what it returns.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_worker_heartbeat_with_logs(text, text, uuid, jsonb, json)',
        'public.func_worker_heartbeat_with_logs(varchar, integer, integer, json, text)',
        'public.func_update_worker_heartbeat(text, integer, integer, text)'
    ]::regprocedure[]);
