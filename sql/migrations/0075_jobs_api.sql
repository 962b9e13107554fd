-- 0075_jobs_api.sql
-- What the jobs API and the event stream read (orchestrator/server/jobs_api.py,
-- events_stream.py; sql/functions/jobs/events_stream.sql).
--
-- job_events.tx: the id of the transaction that wrote the event. Event ids come from a
-- sequence, so they are handed out in insert order, not commit order: a transaction
-- that took id 10 may commit after the one that took id 11. A reader paging by id alone
-- would see 11, move past it and never see 10. The stream therefore pages by (tx,
-- event_id) and only hands out events whose transaction is older than every transaction
-- still running (pg_snapshot_xmin): that prefix can no longer change, so a cursor into it
-- never skips an event nor repeats one, with no LISTEN and through a transaction pooler.
-- Rows written before this migration keep tx = 0 (all long committed: they sort by id,
-- first); the constant default adds the column without rewriting the table.
ALTER TABLE public.job_events ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT '0'::xid8;
ALTER TABLE public.job_events ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
COMMENT ON COLUMN public.job_events.tx IS
    'The writing transaction (pg_current_xact_id(); 0 for rows older than migration 0075). The event stream reads in (tx, event_id) order below pg_snapshot_xmin, so no event is skipped when transactions commit out of id order.';
CREATE INDEX IF NOT EXISTS job_events_stream_idx ON public.job_events (tx, event_id);

-- GET /api/cloud/jobs?organization=&type= pages newest first within one organisation or
-- job type (as jobs_user_id_idx does for one user).
CREATE INDEX IF NOT EXISTS jobs_organization_id_idx ON public.jobs (organization_id, job_id);
CREATE INDEX IF NOT EXISTS jobs_type_id_idx ON public.jobs (job_type, job_id);
