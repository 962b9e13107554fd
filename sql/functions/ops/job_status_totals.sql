-- sql/functions/ops/job_status_totals.sql
-- Job counters for metrics (tables in sql/migrations/0032 and 0095), so a metrics scrape
-- reads a few hundred counter rows instead of counting a million jobs, and nothing on
-- the claim or completion path writes a counter: job_events is the only record, and the
-- fold counts it set-based, off the hot path (func_fold_job_counters: every scrape, and
-- the daemon every minute). func_ops_metrics reads the totals plus the events not yet
-- folded, in one snapshot, so a scrape is exact at any moment.
--
-- Which events are status transitions: every job_events row with a to_status is one
-- change of jobs.status (from_status -> to_status; from_status NULL when the job was
-- created), EXCEPT the events whose type starts with provider_ (provider_status,
-- provider_cancelled, provider_cancel_failed), whose statuses are the external
-- provider's words. A new event type that changes jobs.status must follow that rule;
-- tests/integration/test_job_status_totals.py compares the counters with the jobs table.
--
-- Exactly once: event ids are handed out at insert, transactions commit in another
-- order, so the fold reads in (tx, event_id) order and stops at pg_snapshot_xmin (as the
-- event stream does, sql/functions/jobs/events_stream.sql): every event below that
-- horizon is committed (or gone with its transaction), and any event written later
-- belongs to a newer transaction, so it sorts after the position. An event whose job
-- was deleted before it was folded is not counted (retention keeps jobs for days; the
-- daemon folds every minute).

-- The transitions of the events in (p_after, p_upto] (stream order; p_upto NULL: no end)
-- with ids above p_baseline, counted per (provider, from_status, to_status). One
-- definition for the fold and for the scrape's pending part.
CREATE OR REPLACE FUNCTION hub_internal.func_job_status_counts(
    p_after_tx xid8, p_after_id bigint, p_baseline bigint, p_upto_tx xid8, p_upto_id bigint
) RETURNS TABLE (provider text, from_status text, to_status text, transitions bigint,
                 run_seconds double precision, run_count bigint, estimated_cost numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
-- planned with the actual position each call: a plan for any position would read the
-- whole history (a scrape of 3,000,000 events took 290 ms that way, not 3 ms)
SET plan_cache_mode = force_custom_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT j.provider, coalesce(e.from_status, ''), e.to_status, count(*),
           coalesce(sum(extract(epoch FROM e.created_at - j.started_at))
                        FILTER (WHERE e.to_status IN ('completed', 'failed', 'cancelled') AND j.started_at IS NOT NULL), 0)::double precision,
           count(*) FILTER (WHERE e.to_status IN ('completed', 'failed', 'cancelled') AND j.started_at IS NOT NULL),
           coalesce(sum(j.estimated_cost), 0)
      FROM public.job_events e
      JOIN public.jobs j ON j.job_id = e.job_id
     WHERE (e.tx, e.event_id) > (p_after_tx, p_after_id)
       AND (p_upto_tx IS NULL OR (e.tx, e.event_id) <= (p_upto_tx, p_upto_id))
       AND e.event_id > p_baseline
       AND e.to_status IS NOT NULL AND e.event_type NOT LIKE 'provider\_%'
     GROUP BY 1, 2, 3;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_status_counts(xid8, bigint, bigint, xid8, bigint) IS
    'Internal: job status transitions of the events after (p_after_tx, p_after_id) up to (p_upto_tx, p_upto_id) (NULL: no end) in stream order, ids above p_baseline, per (provider, from_status, to_status).';

-- Adds the events after the position, below the horizon, to the totals and moves the
-- position, max_events at most per call ({more: true}: call again). Two folds at once:
-- the second waits for the first's row lock and continues from its position.
CREATE OR REPLACE FUNCTION public.func_fold_job_counters(max_events integer DEFAULT 100000)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    f public.job_status_fold;
    v_horizon xid8;
    v_upto_tx xid8;
    v_upto_id bigint;
    v_keys bigint;
    v_events bigint;
BEGIN
    IF max_events IS NULL OR max_events NOT BETWEEN 1 AND 10000000 THEN
        RAISE EXCEPTION 'max_events must be from 1 to 10000000, got %', coalesce(max_events::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO f FROM public.job_status_fold WHERE id = 1 FOR UPDATE;
    -- after the lock: this statement's snapshot sees what the fold before us committed
    v_horizon := pg_snapshot_xmin(pg_current_snapshot());
    SELECT count(*), (array_agg(x.tx ORDER BY x.tx DESC, x.event_id DESC))[1],
           (array_agg(x.event_id ORDER BY x.tx DESC, x.event_id DESC))[1]
      INTO v_events, v_upto_tx, v_upto_id
      FROM (SELECT e.tx, e.event_id FROM public.job_events e
             WHERE (e.tx, e.event_id) > (f.tx, f.event_id) AND e.tx < v_horizon
             ORDER BY e.tx, e.event_id
             LIMIT max_events) x;
    IF v_events = 0 THEN
        RETURN jsonb_build_object('keys', 0, 'events', 0, 'more', false);
    END IF;
    INSERT INTO public.job_status_totals AS t
        (provider, from_status, to_status, transitions, run_seconds, run_count, estimated_cost)
    SELECT * FROM hub_internal.func_job_status_counts(f.tx, f.event_id, f.baseline, v_upto_tx, v_upto_id)
     ORDER BY 1, 2, 3
    ON CONFLICT ON CONSTRAINT job_status_totals_pkey DO UPDATE SET
        transitions = t.transitions + EXCLUDED.transitions,
        run_seconds = t.run_seconds + EXCLUDED.run_seconds,
        run_count = t.run_count + EXCLUDED.run_count,
        estimated_cost = t.estimated_cost + EXCLUDED.estimated_cost;
    GET DIAGNOSTICS v_keys = ROW_COUNT;
    UPDATE public.job_status_fold
       SET tx = v_upto_tx, event_id = v_upto_id, folded_at = now()
     WHERE id = 1;
    RETURN jsonb_build_object('keys', v_keys, 'events', v_events, 'more', v_events >= max_events);
END;
$$;
COMMENT ON FUNCTION public.func_fold_job_counters(integer) IS
    'Counts the job_events written since the last fold (up to max_events of them, those every running transaction is newer than) into job_status_totals; each event is counted once however many folds overlap. Returns {keys, events, more}: call again while more is true.';

-- Recomputes the totals from job_events (after a restore or hand edits, or to check
-- them). Inserts of events wait meanwhile (SHARE lock), so the totals and the events
-- meet exactly; the position then starts at the last event below the horizon and every
-- event there is now is the baseline (counted here, skipped by the folds).
CREATE OR REPLACE FUNCTION hub_internal.func_job_status_totals_rebuild()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_rows bigint;
    v_horizon xid8;
    v_baseline bigint;
BEGIN
    LOCK TABLE public.job_events IN SHARE MODE;
    LOCK TABLE public.job_status_totals, public.job_status_fold IN EXCLUSIVE MODE;
    v_horizon := pg_snapshot_xmin(pg_current_snapshot());
    SELECT coalesce(max(event_id), 0) INTO v_baseline FROM public.job_events;
    DELETE FROM public.job_status_totals;
    INSERT INTO public.job_status_totals
        (provider, from_status, to_status, transitions, run_seconds, run_count, estimated_cost)
    SELECT * FROM hub_internal.func_job_status_counts('0'::xid8, -1, -1, NULL, NULL);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    INSERT INTO public.job_status_fold AS f (id, tx, event_id, baseline)
    SELECT 1, coalesce(p.tx, '0'::xid8), coalesce(p.event_id, 0), v_baseline
      FROM (SELECT NULL) one
      LEFT JOIN LATERAL (SELECT e.tx, e.event_id FROM public.job_events e
                          WHERE e.tx < v_horizon ORDER BY e.tx DESC, e.event_id DESC LIMIT 1) p ON true
    ON CONFLICT (id) DO UPDATE SET tx = EXCLUDED.tx, event_id = EXCLUDED.event_id,
                                   baseline = EXCLUDED.baseline, folded_at = now();
    RETURN jsonb_build_object('rows', v_rows);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_status_totals_rebuild() IS
    'Recomputes job_status_totals from job_events and resets the fold''s position (owner only). Returns {rows}.';

-- Backfill: a database that had jobs before the counters existed gets them counted once
-- (migration 0095 took every event there was as counted). Cheap when there is nothing
-- to do.
SELECT hub_internal.func_job_status_totals_rebuild()
 WHERE NOT EXISTS (SELECT 1 FROM public.job_status_totals)
   AND EXISTS (SELECT 1 FROM public.job_events);

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_job_status_counts(xid8, bigint, bigint, xid8, bigint)',
        'public.func_fold_job_counters(integer)',
        'hub_internal.func_job_status_totals_rebuild()'
    ]::regprocedure[]);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        REVOKE ALL ON FUNCTION hub_internal.func_job_status_totals_rebuild() FROM service_role;
    END IF;
END;
$$;
