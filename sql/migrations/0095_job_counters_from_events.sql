-- 0095_job_counters_from_events.sql
-- The job counters (job_status_totals) are folded from job_events itself, in the event
-- stream's order, instead of being appended by a row trigger on every event.
--
-- The trigger cost each event a PL/pgSQL call, a jobs lookup and an insert into
-- job_status_deltas (18 µs measured in a worker drain): two or three a job, 11 % of a
-- four-process worker's throughput in an A/B. The fold does the same counting set-based,
-- off the claim path: it reads the events after its position in (tx, event_id) order and
-- only below pg_snapshot_xmin, the prefix no running transaction can still add to (the
-- rule of the event stream, sql/functions/jobs/events_stream.sql), so each event is
-- counted exactly once however transactions commit (sql/functions/ops/job_status_totals.sql).
--
-- job_status_fold holds the position (tx, event_id: the last event looked at) and the
-- baseline: events with ids up to it were counted before the position was set (by the
-- trigger, before this migration, or by a rebuild) and are skipped.

CREATE TABLE IF NOT EXISTS public.job_status_fold (
    id         smallint    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    tx         xid8        NOT NULL,
    event_id   bigint      NOT NULL,
    baseline   bigint      NOT NULL,
    folded_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.job_status_fold IS
    'Where func_fold_job_counters() stands in job_events: every event up to (tx, event_id) in stream order is counted in job_status_totals; events with event_id <= baseline were counted before (a rebuild) and are skipped. One row.';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.job_status_fold']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.job_status_fold');

DO $$
DECLARE
    v_horizon xid8;
BEGIN
    -- No event is written while the counters change hands: what the trigger counted
    -- (totals plus its pending deltas) is then exactly the events that exist.
    LOCK TABLE public.job_events IN SHARE ROW EXCLUSIVE MODE;
    -- (also when this file runs again after 0032 made the table anew: it is empty then)
    IF to_regclass('public.job_status_deltas') IS NOT NULL THEN
        INSERT INTO public.job_status_totals AS t
            (provider, from_status, to_status, transitions, run_seconds, run_count, estimated_cost)
        SELECT provider, from_status, to_status, sum(transitions), sum(run_seconds), sum(run_count),
               sum(estimated_cost)
          FROM public.job_status_deltas GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT ON CONSTRAINT job_status_totals_pkey DO UPDATE SET
            transitions = t.transitions + EXCLUDED.transitions,
            run_seconds = t.run_seconds + EXCLUDED.run_seconds,
            run_count = t.run_count + EXCLUDED.run_count,
            estimated_cost = t.estimated_cost + EXCLUDED.estimated_cost;
        DROP TRIGGER IF EXISTS job_events_status_totals ON public.job_events;
        DROP TABLE public.job_status_deltas;
    END IF;
    IF EXISTS (SELECT 1 FROM public.job_status_fold) THEN
        RETURN;
    END IF;
    -- Every event there is now is counted: the baseline. The position: the last of them
    -- below the horizon, so an event a transaction older than it writes later still
    -- sorts after the position (see func_fold_job_counters).
    v_horizon := pg_snapshot_xmin(pg_current_snapshot());
    INSERT INTO public.job_status_fold (id, tx, event_id, baseline)
    SELECT 1, coalesce(p.tx, '0'::xid8), coalesce(p.event_id, 0),
           coalesce((SELECT max(e.event_id) FROM public.job_events e), 0)
      FROM (SELECT NULL) one
      LEFT JOIN LATERAL (SELECT e.tx, e.event_id FROM public.job_events e
                          WHERE e.tx < v_horizon ORDER BY e.tx DESC, e.event_id DESC LIMIT 1) p ON true;
END;
$$;

COMMENT ON TABLE public.job_status_totals IS
    'Job status transitions counted per (provider, from_status, to_status), folded from job_events by func_fold_job_counters() (job_status_fold says up to where); read with the events not yet folded by func_ops_metrics(). Rebuilt from job_events by hub_internal.func_job_status_totals_rebuild().';
