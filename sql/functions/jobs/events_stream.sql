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
    v_events jsonb;
    v_matched integer;
    v_scanned integer;
    v_last_scanned bigint;
    v_last_matched bigint;
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

    WITH scanned AS (
        SELECT e.* FROM public.job_events e
         WHERE (e.tx, e.event_id) > (v_tx, CASE WHEN v_found THEN after_event_id ELSE 0 END)
           AND e.tx < v_horizon
           AND (v_found OR e.event_id > after_event_id)
         ORDER BY e.tx, e.event_id
         LIMIT v_scan
    ), matched AS (
        SELECT s.tx, s.event_id, jsonb_build_object(
                   'event_id', s.event_id, 'job_id', s.job_id, 'event_type', s.event_type,
                   'from_status', s.from_status, 'to_status', s.to_status, 'worker_id', s.worker_id,
                   'details', s.details, 'created_at', s.created_at, 'user_id', j.user_id,
                   'organization_id', j.organization_id, 'job_type', j.job_type,
                   'provider', j.provider) AS ev
          FROM scanned s JOIN public.jobs j ON j.job_id = s.job_id
         WHERE (v_jobs IS NULL OR s.job_id = ANY (v_jobs))
           AND (v_users IS NULL OR j.user_id = ANY (v_users))
           AND (v_types IS NULL OR s.event_type = ANY (v_types))
         ORDER BY s.tx, s.event_id
         LIMIT row_limit
    )
    SELECT (SELECT coalesce(jsonb_agg(m.ev ORDER BY m.tx, m.event_id), '[]'::jsonb) FROM matched m),
           (SELECT count(*) FROM matched),
           (SELECT m.event_id FROM matched m ORDER BY m.tx DESC, m.event_id DESC LIMIT 1),
           (SELECT count(*) FROM scanned),
           (SELECT s.event_id FROM scanned s ORDER BY s.tx DESC, s.event_id DESC LIMIT 1)
      INTO v_events, v_matched, v_last_matched, v_scanned, v_last_scanned;

    -- A full page stops at its last event; otherwise everything scanned was looked at.
    v_position := CASE WHEN v_matched = row_limit THEN v_last_matched
                       ELSE coalesce(v_last_scanned, after_event_id) END;
    RETURN jsonb_build_object('events', v_events, 'position', v_position,
                              'more', v_matched = row_limit OR v_scanned = v_scan);
END;
$$;
COMMENT ON FUNCTION public.func_job_events_after(bigint, jsonb, jsonb, jsonb, integer) IS
    'Job events after the event after_event_id (0: from the first; null: none, just the present position), in (transaction, event_id) order and only from transactions older than every running one, so a resumed reader gets each later event exactly once whatever the commit order. Optional filters, JSON arrays of at most 100 strings each: job_ids, user_ids, event_types. At most row_limit (1..1000) events and 5000 rows looked at per call: {events: [{event_id, job_id, event_type, from_status, to_status, worker_id, details, created_at, user_id, organization_id, job_type, provider}], position (pass as after_event_id next), more}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_job_events_after(bigint, jsonb, jsonb, jsonb, integer)'
    ]::regprocedure[]);
