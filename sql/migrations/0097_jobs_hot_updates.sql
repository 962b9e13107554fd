-- 0097_jobs_hot_updates.sql
-- A claim and a completion update a jobs row in place (HOT) instead of adding an entry
-- to every index of jobs: the indexes that read a job's status move to its queue entry.
--
-- Why: PostgreSQL updates a row without touching its indexes (a heap-only tuple) only
-- when no index covers a changed column, predicates included. Four indexes of jobs read
-- status (or finished_at), which every claim and completion changes, so each of those
-- updates inserted into all six indexes that apply: twelve index entries a job, and
-- their WAL. The queue entry's status changes in the same transactions and its row is
-- re-indexed anyway, so the same questions are answered from there at the cost of three
-- entries. Measured in a scratch database (bench/job_queue_server.py's fused loop):
-- 652 -> 562 µs a job; four threads claiming one at a time: 0.73 -> 0.81 of the bare loop.
--
--   jobs_status_id_idx (status, job_id)       -> job_queue_job_status_idx: the entry's
--       status in the jobs vocabulary (scheduled is a queued job, pending_approval one
--       awaiting approval), then job_id: func_list_jobs by status, the recent failures;
--   jobs_active_provider_idx                  -> job_queue_active_idx (provider, job_id)
--       of scheduled, queued and running entries: func_list_active_provider_jobs;
--   jobs_finished_idx (finished_at)           -> job_queue_finished_idx (run_after) of
--       finished entries: every path that finishes a job sets the entry's run_after to
--       the same now() as the job's finished_at; retention walks it oldest first and
--       still decides on jobs.finished_at;
--   jobs_remote_cancel_idx                    -> jobs_remote_copy_idx (provider, job_id)
--       of jobs whose provider copy was last seen active (no status in it: only the
--       provider's reports change those columns); func_list_remote_cancels adds
--       status = 'cancelled'.
-- fillfactor 80 leaves room on each page for the new versions of its rows.

-- The queue entries of finished jobs agree with their job: a rejected or expired approval
-- left its entry failed where the job says cancelled, and entries finished by a cancel
-- or a provider's report kept their old run_after (the functions now set both).
UPDATE public.job_queue q
   SET status = j.status::text, run_after = j.finished_at
  FROM public.jobs j
 WHERE j.job_id = q.job_id
   AND q.status IN ('completed', 'failed', 'cancelled')
   AND j.status IN ('completed', 'failed', 'cancelled') AND j.finished_at IS NOT NULL
   AND (q.status::text <> j.status::text OR q.run_after <> j.finished_at);

DROP INDEX IF EXISTS public.jobs_status_id_idx;
DROP INDEX IF EXISTS public.jobs_active_provider_idx;
DROP INDEX IF EXISTS public.jobs_finished_idx;
DROP INDEX IF EXISTS public.jobs_remote_cancel_idx;
ALTER TABLE public.jobs SET (fillfactor = 80);

CREATE INDEX IF NOT EXISTS job_queue_job_status_idx ON public.job_queue
    ((CASE status::text WHEN 'scheduled' THEN 'queued' WHEN 'pending_approval' THEN 'awaiting_approval'
                        ELSE status::text END), job_id);
CREATE INDEX IF NOT EXISTS job_queue_active_idx ON public.job_queue (provider, job_id)
    WHERE status IN ('scheduled', 'queued', 'running');
CREATE INDEX IF NOT EXISTS job_queue_finished_idx ON public.job_queue (run_after)
    WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX IF NOT EXISTS jobs_remote_copy_idx ON public.jobs (provider, job_id)
    WHERE provider_job_id IS NOT NULL AND provider_status IN ('pending', 'uploading', 'queued', 'running');

COMMENT ON INDEX public.job_queue_job_status_idx IS
    'Jobs by status (the jobs vocabulary: a scheduled entry is a queued job, pending_approval one awaiting approval), newest first: func_list_jobs, func_jobs_overview. On the queue entry so that updates of jobs stay HOT (0097).';
COMMENT ON COLUMN public.job_queue.run_after IS
    'Not claimable before this time: run_at of a scheduled job, or the end of a retry''s backoff; such an entry waits in status scheduled, outside the claim''s indexes, until a claim finds it due. A finished entry: when it finished (the job''s finished_at), which retention walks (job_queue_finished_idx).';
