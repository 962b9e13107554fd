-- 0032_job_status_totals.sql
-- Job counters for metrics without counting the job history and without a hot row on
-- the claim path (sql/functions/ops/job_status_totals.sql): a statement-level trigger on
-- job_events adds each statement's status transitions to one of 16 shard rows chosen by
-- the backend, so concurrent claimers rarely touch the same row. Jobs per status =
-- transitions into it minus transitions out of it, exact by construction (every status
-- change writes exactly one event).

CREATE TABLE IF NOT EXISTS public.job_status_totals (
    provider        text     NOT NULL,
    from_status     text     NOT NULL,  -- '' for a job's first status (submitted)
    to_status       text     NOT NULL,
    shard           smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    transitions     bigint   NOT NULL,
    run_seconds     double precision NOT NULL DEFAULT 0,  -- first start to end, ended jobs that ran
    run_count       bigint   NOT NULL DEFAULT 0,
    estimated_cost  numeric  NOT NULL DEFAULT 0,          -- sum of the moved jobs' estimated_cost
    PRIMARY KEY (provider, from_status, to_status, shard)
) WITH (fillfactor = 50);  -- updated on every transition: room for HOT updates
COMMENT ON TABLE public.job_status_totals IS
    'Job status transitions counted per (provider, from_status, to_status) in 16 shards (pg_backend_pid() % 16), kept by the statement trigger job_events_status_totals; read by func_ops_metrics(). Rebuilt from job_events by hub_internal.func_job_status_totals_rebuild().';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.job_status_totals']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.job_status_totals');
