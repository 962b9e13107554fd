-- 0020_job_lifecycle.sql
-- What issue 15 adds to the job store's tables (functions: sql/functions/jobs/):
--   * job_queue.status 'scheduled': a job that may not run yet (run_at in the future, or
--     a retry waiting for its backoff) leaves the claim's partial indexes, so a claim's
--     cost no longer grows with the backlog of jobs it cannot take (it walked past every
--     one: 0.38 ms -> 3.58 ms at 19,990 of them). Claims move the due ones to 'queued'
--     through job_queue_scheduled_idx, one index probe when none is due;
--   * jobs.timeout_seconds: the worker stops a run that takes longer and fails the attempt;
--   * jobs.rerun_of: a re-run is a new job pointing at the one it repeats;
--   * queue_pauses: a provider's queue, or one job type of it, paused;
--   * periodic_jobs: cron schedules, one job per tick whatever the number of daemons;
--   * jobs_finished_idx: retention finds the oldest finished jobs without a scan.

ALTER TABLE public.job_queue DROP CONSTRAINT IF EXISTS job_queue_status_check;
ALTER TABLE public.job_queue ADD CONSTRAINT job_queue_status_check CHECK (status IN
    ('pending_approval', 'scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled'));
UPDATE public.job_queue SET status = 'scheduled' WHERE status = 'queued' AND run_after > now();
CREATE INDEX IF NOT EXISTS job_queue_scheduled_idx
    ON public.job_queue (provider, run_after) WHERE status = 'scheduled';
COMMENT ON COLUMN public.job_queue.run_after IS
    'Not claimable before this time: run_at of a scheduled job, or the end of a retry''s backoff. Such an entry waits in status scheduled, outside the claim''s indexes, until a claim finds it due.';

ALTER TABLE public.jobs ADD COLUMN IF NOT EXISTS timeout_seconds integer
    CONSTRAINT jobs_timeout_seconds_check CHECK (timeout_seconds BETWEEN 1 AND 604800);
ALTER TABLE public.jobs ADD COLUMN IF NOT EXISTS rerun_of uuid;
COMMENT ON COLUMN public.jobs.timeout_seconds IS
    'Longest run of one attempt (1 s .. 7 days); the worker stops the run and fails the attempt when it is exceeded. NULL: no limit.';
COMMENT ON COLUMN public.jobs.rerun_of IS
    'The failed or cancelled job this one re-runs (func_rerun_job); no foreign key, so retention may remove the original first.';

CREATE INDEX IF NOT EXISTS jobs_finished_idx
    ON public.jobs (finished_at) WHERE status IN ('completed', 'failed', 'cancelled');

CREATE TABLE IF NOT EXISTS public.queue_pauses (
    provider   text        NOT NULL CHECK (btrim(provider) <> '' AND length(provider) <= 255),
    job_type   text        NOT NULL DEFAULT '' CHECK (length(job_type) <= 255),
    paused_by  text        NOT NULL CHECK (btrim(paused_by) <> '' AND length(paused_by) <= 255),
    reason     text        CHECK (length(reason) <= 1000),
    paused_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, job_type)
);
COMMENT ON TABLE public.queue_pauses IS
    'Paused queues: a provider''s whole queue (job_type = '''') or one job type of it. Claims skip paused jobs; they stay queued and run after func_resume_queue. Written by func_pause_queue / func_resume_queue.';

CREATE TABLE IF NOT EXISTS public.periodic_jobs (
    name        text        PRIMARY KEY CHECK (btrim(name) <> '' AND length(name) <= 255),
    cron        text        NOT NULL CHECK (btrim(cron) <> '' AND length(cron) <= 255),
    job         jsonb       NOT NULL CHECK (jsonb_typeof(job) = 'object'),
    enabled     boolean     NOT NULL DEFAULT true,
    next_run_at timestamptz NOT NULL,
    last_run_at timestamptz,
    last_job_id uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS periodic_jobs_due_idx ON public.periodic_jobs (next_run_at) WHERE enabled;
COMMENT ON TABLE public.periodic_jobs IS
    'Cron schedules (UTC): at each tick one job is submitted from the job template. next_run_at is the next tick; func_enqueue_periodic_job moves it forward and submits in one transaction, conditional on the tick still being the row''s, so any number of daemons submit each tick once.';

SELECT hub_internal.func_hub_secure(
    p_tables => ARRAY['public.queue_pauses', 'public.periodic_jobs']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy(t)
  FROM unnest(ARRAY['public.queue_pauses', 'public.periodic_jobs']::regclass[]) AS t;
