-- sql/functions/ops/job_status_totals.sql
-- Job counters kept on write (tables in sql/migrations/0032), so a metrics scrape reads
-- a few hundred counter rows instead of counting a million jobs, and no claim or
-- completion waits on a counter row: the trigger only appends to job_status_deltas (no
-- index, no key, no conflict); folding the deltas into job_status_totals happens off the
-- hot path (func_fold_job_counters: every scrape, and the daemon every minute).
--
-- Which events are status transitions: every job_events row with a to_status is one
-- change of jobs.status (from_status -> to_status; from_status NULL when the job was
-- created), EXCEPT the events whose type starts with provider_ (provider_status,
-- provider_cancelled, provider_cancel_failed), whose statuses are the external
-- provider's words. A new event type that changes jobs.status must follow that rule;
-- tests/integration/test_job_status_totals.py compares the counters with the jobs table.

-- A row trigger whose WHEN clause (evaluated without calling the function) skips the
-- provider's words: measured on PostgreSQL 15 it costs a completion about a third of a
-- statement trigger over the transition table, whose query is planned afresh on every
-- call (bench/RESULTS.md, job_counters).
CREATE OR REPLACE FUNCTION hub_internal.func_job_status_totals_trigger()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    INSERT INTO public.job_status_deltas
        (provider, from_status, to_status, transitions, run_seconds, run_count, estimated_cost)
    SELECT j.provider, coalesce(NEW.from_status, ''), NEW.to_status, 1,
           CASE WHEN NEW.to_status IN ('completed', 'failed', 'cancelled') AND j.started_at IS NOT NULL
                THEN extract(epoch FROM NEW.created_at - j.started_at) ELSE 0 END,
           CASE WHEN NEW.to_status IN ('completed', 'failed', 'cancelled') AND j.started_at IS NOT NULL
                THEN 1 ELSE 0 END,
           coalesce(j.estimated_cost, 0)
      FROM public.jobs j
     WHERE j.job_id = NEW.job_id;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_status_totals_trigger() IS
    'Internal row trigger on job_events: appends the event''s job status transition (an event with a to_status, except provider_* events) to job_status_deltas.';

DROP TRIGGER IF EXISTS job_events_status_totals ON public.job_events;
CREATE TRIGGER job_events_status_totals
    AFTER INSERT ON public.job_events
    FOR EACH ROW
    WHEN (NEW.to_status IS NOT NULL AND NEW.event_type NOT LIKE 'provider\_%')
    EXECUTE FUNCTION hub_internal.func_job_status_totals_trigger();

-- Moves the deltas into the totals. Each delta row is deleted (and so counted) exactly
-- once even when two folds overlap: the second waits for the first's row locks and then
-- finds those rows gone. Appends committed meanwhile stay for the next fold. Called by
-- func_ops_metrics on every scrape and by the daemon's job_counters duty every minute,
-- so the deltas stay small even where nobody scrapes.
CREATE OR REPLACE FUNCTION public.func_fold_job_counters()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_rows bigint;
BEGIN
    WITH moved AS (
        DELETE FROM public.job_status_deltas RETURNING *
    ), summed AS (
        SELECT provider, from_status, to_status, sum(transitions) AS transitions,
               sum(run_seconds) AS run_seconds, sum(run_count) AS run_count,
               sum(estimated_cost) AS estimated_cost
          FROM moved GROUP BY 1, 2, 3
    )
    INSERT INTO public.job_status_totals AS t
        (provider, from_status, to_status, transitions, run_seconds, run_count, estimated_cost)
    SELECT * FROM summed ORDER BY 1, 2, 3
    ON CONFLICT ON CONSTRAINT job_status_totals_pkey DO UPDATE SET
        transitions = t.transitions + EXCLUDED.transitions,
        run_seconds = t.run_seconds + EXCLUDED.run_seconds,
        run_count = t.run_count + EXCLUDED.run_count,
        estimated_cost = t.estimated_cost + EXCLUDED.estimated_cost;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN jsonb_build_object('keys', v_rows);
END;
$$;
COMMENT ON FUNCTION public.func_fold_job_counters() IS
    'Folds the job counters'' pending deltas (job_status_deltas) into job_status_totals; each delta is counted once however many folds overlap. Returns {keys}.';

-- Recomputes the totals from job_events (after hand edits, or to check them). Inserts of
-- events wait meanwhile (SHARE lock), so the totals and the events meet exactly. Its
-- WHERE and expressions mirror the trigger's on purpose: helpers shared by both are not
-- inlined into a trigger and made every completion 50 % dearer (bench/RESULTS.md);
-- tests/integration/test_job_status_totals.py checks that the two agree.
CREATE OR REPLACE FUNCTION hub_internal.func_job_status_totals_rebuild()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_rows bigint;
BEGIN
    LOCK TABLE public.job_events IN SHARE MODE;
    LOCK TABLE public.job_status_totals, public.job_status_deltas IN EXCLUSIVE MODE;
    DELETE FROM public.job_status_deltas;
    DELETE FROM public.job_status_totals;
    INSERT INTO public.job_status_totals
        (provider, from_status, to_status, transitions, run_seconds, run_count, estimated_cost)
    SELECT j.provider, coalesce(e.from_status, ''), e.to_status, count(*),
           coalesce(sum(extract(epoch FROM e.created_at - j.started_at))
                        FILTER (WHERE e.to_status IN ('completed', 'failed', 'cancelled') AND j.started_at IS NOT NULL), 0),
           count(*) FILTER (WHERE e.to_status IN ('completed', 'failed', 'cancelled') AND j.started_at IS NOT NULL),
           coalesce(sum(j.estimated_cost), 0)
      FROM public.job_events e
      JOIN public.jobs j ON j.job_id = e.job_id
     WHERE e.to_status IS NOT NULL AND e.event_type NOT LIKE 'provider\_%'
     GROUP BY 1, 2, 3;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN jsonb_build_object('rows', v_rows);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_status_totals_rebuild() IS
    'Recomputes job_status_totals from job_events and empties job_status_deltas (owner only). Returns {rows}.';

-- Backfill: a database that had jobs before the counters existed gets them counted once.
-- Cheap when there is nothing to do (index and heap probes); the trigger above counts
-- every event from here on (creating it locked job_events against inserts until commit).
SELECT hub_internal.func_job_status_totals_rebuild()
 WHERE NOT EXISTS (SELECT 1 FROM public.job_status_totals)
   AND NOT EXISTS (SELECT 1 FROM public.job_status_deltas)
   AND EXISTS (SELECT 1 FROM public.job_events);

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_job_status_totals_trigger()',
        'public.func_fold_job_counters()',
        'hub_internal.func_job_status_totals_rebuild()'
    ]::regprocedure[]);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        REVOKE ALL ON FUNCTION hub_internal.func_job_status_totals_rebuild() FROM service_role;
    END IF;
END;
$$;
