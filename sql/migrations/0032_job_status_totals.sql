-- 0032_job_status_totals.sql
-- Job counters for metrics without counting the job history and without a hot row on
-- the claim path (sql/functions/ops/job_status_totals.sql). A trigger on job_events
-- appends each status transition to job_status_deltas, a heap with no index and no key:
-- an insert never waits for another transaction, so concurrent claims and completions
-- never queue on a counter row (a sharded counter row still makes two backends of the
-- same shard wait for each other's commit). func_ops_metrics reads totals + deltas in
-- one snapshot; func_fold_job_counters (every scrape, and the daemon every minute)
-- moves the deltas into job_status_totals, so they stay a minute's worth.
-- Jobs per status = transitions into it minus transitions out of it, exact by
-- construction (every status change writes exactly one event).

CREATE TABLE IF NOT EXISTS public.job_status_totals (
    provider        text     NOT NULL,
    from_status     text     NOT NULL,  -- '' for a job's first status (submitted)
    to_status       text     NOT NULL,
    transitions     bigint   NOT NULL,
    run_seconds     double precision NOT NULL DEFAULT 0,  -- first start to end, ended jobs that ran
    run_count       bigint   NOT NULL DEFAULT 0,
    estimated_cost  numeric  NOT NULL DEFAULT 0,          -- sum of the moved jobs' estimated_cost
    PRIMARY KEY (provider, from_status, to_status)
);
COMMENT ON TABLE public.job_status_totals IS
    'Job status transitions counted per (provider, from_status, to_status), folded from job_status_deltas by func_fold_job_counters(); read (with the deltas) by func_ops_metrics(). Rebuilt from job_events by hub_internal.func_job_status_totals_rebuild().';

CREATE TABLE IF NOT EXISTS public.job_status_deltas (
    provider        text     NOT NULL,
    from_status     text     NOT NULL,
    to_status       text     NOT NULL,
    transitions     bigint   NOT NULL,
    run_seconds     double precision NOT NULL,
    run_count       bigint   NOT NULL,
    estimated_cost  numeric  NOT NULL
);
COMMENT ON TABLE public.job_status_deltas IS
    'Job status transitions not yet folded into job_status_totals: one row per transition, appended by the trigger job_events_status_totals. No index on purpose: appends never wait.';

SELECT hub_internal.func_hub_secure(
    p_tables => ARRAY['public.job_status_totals', 'public.job_status_deltas']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.job_status_totals');
SELECT hub_internal.func_hub_service_role_policy('public.job_status_deltas');
