-- sql/functions/jobs/events_stream.sql
-- The event stream's read (GET /api/events/stream, orchestrator/server/events_stream.py):
-- job_events after a position, in a total order that never changes behind a reader.
--
-- Ids are handed out at insert time, transactions commit in another order (see
-- migration 0075), so the order is (tx, event_id) and only events whose transaction is
-- older than every transaction still running (pg_snapshot_xmin of this statement's
-- snapshot) are handed out: that prefix is final, so resuming after an event id gives
-- each later event exactly once. A long-running writing transaction delays the stream
-- (never loses an event). Plain reads by keyset: no LISTEN, so it works through a
-- transaction pooler and over Supabase REST.

CREATE OR REPLACE FUNCTION public.func_job_events_after(
    after_event_id bigint DEFAULT NULL,
    job_ids jsonb DEFAULT NULL,
    user_ids jsonb DEFAULT NULL,
    event_types jsonb DEFAULT NULL,
    row_limit integer DEFAULT 100
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    -- at most this many events are looked at per call, matching the filters or not, so
    -- a rare filter over a long backlog answers at once and continues from position
    v_scan constant integer := 5000;
    v_horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
    v_tx xid8 := '0'::xid8;
    v_found boolean := true;
    v_events jsonb[] := ARRAY[]::jsonb[];  -- appended in place (an expanded array)
    v_matched integer;
    v_scanned integer;
    r record;
    v_job record;
    v_position bigint;
    v_jobs uuid[];
    v_users text[];
    v_types text[];
    v_bad text;
BEGIN
    IF row_limit IS NULL OR row_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'row_limit must be between 1 and 1000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF after_event_id < 0 THEN
        RAISE EXCEPTION 'after_event_id must be an event id (>= 0; 0: from the first event), got %', after_event_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(job_ids, user_ids, event_types) IS NOT NULL THEN  -- idle polls skip it
        SELECT string_agg(x.name, ', ') INTO v_bad
          FROM (VALUES ('job_ids', job_ids), ('user_ids', user_ids), ('event_types', event_types)) AS x(name, value)
         WHERE x.value IS NOT NULL AND jsonb_typeof(x.value) <> 'null'
           AND (jsonb_typeof(x.value) <> 'array' OR jsonb_array_length(x.value) > 100
                OR EXISTS (SELECT 1 FROM jsonb_array_elements(x.value) AS v
                            WHERE jsonb_typeof(v) <> 'string' OR length(v #>> '{}') NOT BETWEEN 1 AND 255));
        IF v_bad IS NOT NULL THEN
            RAISE EXCEPTION '% must be an array of at most 100 strings of 1 to 255 characters, or null', v_bad
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE jsonb_typeof(job_ids) WHEN 'array' THEN job_ids END) AS v
                    WHERE v !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$') THEN
            RAISE EXCEPTION 'job_ids must hold job ids (UUIDs such as 0190b6a2-7c3e-7b1a-9f0e-1d2c3b4a5f60)'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(job_ids) = 'array' THEN
            v_jobs := ARRAY(SELECT v::uuid FROM jsonb_array_elements_text(job_ids) AS v);
        END IF;
        IF jsonb_typeof(user_ids) = 'array' THEN
            v_users := ARRAY(SELECT jsonb_array_elements_text(user_ids));
        END IF;
        IF jsonb_typeof(event_types) = 'array' THEN
            v_types := ARRAY(SELECT jsonb_array_elements_text(event_types));
        END IF;
    END IF;

    IF after_event_id IS NULL THEN
        -- No position: the stream starts at the present (the newest final event).
        SELECT e.event_id INTO v_position FROM public.job_events e
         WHERE e.tx < v_horizon ORDER BY e.tx DESC, e.event_id DESC LIMIT 1;
        RETURN jsonb_build_object('events', '[]'::jsonb, 'position', coalesce(v_position, 0), 'more', false);
    END IF;
    IF after_event_id > 0 THEN
        SELECT e.tx INTO v_tx FROM public.job_events e WHERE e.event_id = after_event_id;
        -- An event no longer there (its job was pruned): continue with the greater ids.
        v_found := FOUND;
        v_tx := coalesce(v_tx, '0'::xid8);
    END IF;

    -- One ordered index scan, filtered row by row, stopping at a full page: a page of
    -- the live tail costs its own rows, not v_scan of them.
    v_matched := 0;
    v_scanned := 0;
    FOR r IN
        SELECT e.event_id, e.job_id, e.event_type, e.from_status, e.to_status, e.worker_id,
               e.details, e.created_at
          FROM public.job_events e
         WHERE (e.tx, e.event_id) > (v_tx, CASE WHEN v_found THEN after_event_id ELSE 0 END)
           AND e.tx < v_horizon
           AND (v_found OR e.event_id > after_event_id)
         ORDER BY e.tx, e.event_id
         LIMIT v_scan
    LOOP
        v_scanned := v_scanned + 1;
        v_position := r.event_id;
        CONTINUE WHEN v_jobs IS NOT NULL AND NOT r.job_id = ANY (v_jobs);
        CONTINUE WHEN v_types IS NOT NULL AND NOT r.event_type = ANY (v_types);
        SELECT j.user_id, j.organization_id, j.job_type, j.provider INTO v_job
          FROM public.jobs j WHERE j.job_id = r.job_id;
        CONTINUE WHEN v_users IS NOT NULL AND NOT v_job.user_id = ANY (v_users);
        v_events := array_append(v_events, jsonb_build_object(
            'event_id', r.event_id, 'job_id', r.job_id, 'event_type', r.event_type,
            'from_status', r.from_status, 'to_status', r.to_status, 'worker_id', r.worker_id,
            'details', r.details, 'created_at', r.created_at, 'user_id', v_job.user_id,
            'organization_id', v_job.organization_id, 'job_type', v_job.job_type,
            'provider', v_job.provider));
        v_matched := v_matched + 1;
        EXIT WHEN v_matched = row_limit;
    END LOOP;
    -- The position is the last event looked at: the page's last one when it is full.
    RETURN jsonb_build_object('events', to_jsonb(v_events), 'position', coalesce(v_position, after_event_id),
                              'more', v_matched = row_limit OR v_scanned = v_scan);
END;
$$;
COMMENT ON FUNCTION public.func_job_events_after(bigint, jsonb, jsonb, jsonb, integer) IS
    'Job events after the event after_event_id (0: from the first; null: none, just the present position), in (transaction, event_id) order and only from transactions older than every running one, so a resumed reader gets each later event exactly once whatever the commit order. Optional filters, JSON arrays of at most 100 strings each: job_ids, user_ids, event_types. At most row_limit (1..1000) events and 5000 rows looked at per call: {events: [{event_id, job_id, event_type, from_status, to_status, worker_id, details, created_at, user_id, organization_id, job_type, provider}], position (pass as after_event_id next), more}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_job_events_after(bigint, jsonb, jsonb, jsonb, integer)'
    ]::regprocedure[]);
