-- 0005_jobs.sql
-- The job hub's tables. The functions of sql/functions/jobs/ are the only way in (RLS
-- on, nothing for anon/authenticated). What earlier systems got wrong, and what this
-- schema does instead:
--   * a "count running, then claim" limit check is exceeded under contention -> one
--     counter row per limited scope (concurrency_limits.running), changed only while the
--     row is locked and never above max_running (CHECK below; claims lock counters in
--     one fixed order, see sql/functions/jobs/claim.sql);
--   * a job dispatched twice / a dead worker overwriting a finished job -> every claim
--     gets a new lease_token; complete/fail/release accept only the current token;
--   * a hot queue table grown huge -> job_queue holds scheduling state only (payloads,
--     results and history live in jobs / job_events) and its claim index is partial;
--   * list-then-update approval expiry -> one set-based statement
--     (sql/functions/jobs/approvals.sql).

CREATE TABLE IF NOT EXISTS public.hub_users (
    user_id         text        PRIMARY KEY CHECK (btrim(user_id) <> '' AND length(user_id) <= 255),
    organization_id text        NOT NULL CHECK (btrim(organization_id) <> '' AND length(organization_id) <= 255),
    display_name    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS hub_users_organization_idx ON public.hub_users (organization_id);
COMMENT ON TABLE public.hub_users IS
    'Who may submit jobs, and the organisation whose concurrency limit their jobs count against. Written by func_upsert_hub_user().';

CREATE TABLE IF NOT EXISTS public.jobs (
    job_id           uuid        PRIMARY KEY DEFAULT hub_internal.func_uuid_v7(),
    user_id          text        NOT NULL REFERENCES public.hub_users (user_id),
    organization_id  text        NOT NULL,
    job_type         text        NOT NULL,
    provider         text        NOT NULL,
    priority         integer     NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    payload          jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    estimated_cost   numeric     CHECK (estimated_cost >= 0),
    max_attempts     integer     NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    idempotency_key  text,
    status           text        NOT NULL CONSTRAINT jobs_status_check CHECK (status IN
                         ('awaiting_approval', 'queued', 'running', 'completed', 'failed', 'cancelled')),
    result           jsonb,
    error            text,
    provider_job_id  text,
    provider_status  text,
    provider_details jsonb,
    cancelled_by     text,
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency_idx
    ON public.jobs (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- func_list_jobs: newest first (job ids are UUIDv7, so id order is submit order).
CREATE INDEX IF NOT EXISTS jobs_status_id_idx ON public.jobs (status, job_id);
CREATE INDEX IF NOT EXISTS jobs_user_id_idx ON public.jobs (user_id, job_id);
-- func_list_active_provider_jobs: every active job of a provider, keyset-paged.
CREATE INDEX IF NOT EXISTS jobs_active_provider_idx
    ON public.jobs (provider, job_id) WHERE status IN ('queued', 'running');
COMMENT ON TABLE public.jobs IS
    'One row per submitted job: what to run, for whom, its status and outcome. Scheduling state (lease, run_after, claim order) lives in job_queue.';
COMMENT ON COLUMN public.jobs.organization_id IS 'The user''s organisation when the job was submitted; its slot is counted against this organisation even if the user moves.';
COMMENT ON COLUMN public.jobs.priority IS '0..1000, higher runs first; aging adds one point per 10 s of waiting (see job_queue.claim_key).';
COMMENT ON COLUMN public.jobs.attempts IS 'Claims so far (a released claim does not count).';
COMMENT ON COLUMN public.jobs.status IS 'awaiting_approval -> queued -> running -> completed | failed | cancelled; running -> queued on retry, release or lease expiry.';
COMMENT ON COLUMN public.jobs.provider_status IS 'The external provider''s own status (pending, uploading, queued, running, ...) as last recorded by func_record_provider_status().';

CREATE TABLE IF NOT EXISTS public.job_queue (
    job_id           uuid        PRIMARY KEY REFERENCES public.jobs (job_id) ON DELETE CASCADE,
    status           text        NOT NULL CONSTRAINT job_queue_status_check CHECK (status IN
                         ('pending_approval', 'queued', 'running', 'completed', 'failed', 'cancelled')),
    provider         text        NOT NULL,
    job_type         text        NOT NULL,
    user_id          text        NOT NULL,
    organization_id  text        NOT NULL,
    priority         integer     NOT NULL,
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL,
    enqueued_at      timestamptz NOT NULL DEFAULT now(),
    claim_key        timestamptz NOT NULL DEFAULT now(),
    run_after        timestamptz NOT NULL DEFAULT now(),
    worker_id        text,
    lease_token      uuid,
    lease_expires_at timestamptz,
    claimed_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT job_queue_running_has_lease CHECK (status <> 'running' OR lease_token IS NOT NULL)
);
-- The claim walks this partial index in claim_key order and stops after a few rows.
CREATE INDEX IF NOT EXISTS job_queue_claim_idx
    ON public.job_queue (provider, claim_key) WHERE status = 'queued';
-- Claims while an organisation is full: one descent per organisation (0010).
CREATE INDEX IF NOT EXISTS job_queue_org_claim_idx
    ON public.job_queue (provider, organization_id, claim_key) WHERE status = 'queued';
-- Expired leases of a provider (every claim looks; usually finds none at once), the
-- reaper, and a worker's jobs (lease extension).
CREATE INDEX IF NOT EXISTS job_queue_lease_idx
    ON public.job_queue (provider, lease_expires_at) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS job_queue_worker_idx
    ON public.job_queue (worker_id) WHERE status = 'running';
COMMENT ON TABLE public.job_queue IS
    'The queue entry of each job (one per job): its scheduling state, small and hot. Terminal entries stay for the record (the seed''s "queue entry -> failed") but leave every index the claim uses.';
COMMENT ON COLUMN public.job_queue.claim_key IS
    'Claim order, lowest first: enqueued_at - priority x 10 s. Ordering by it equals ordering by the effective priority priority + waited_seconds / 10 (now() is the same for every row), so a waiting job gains one point every 10 s and a priority-0 job overtakes a fresh priority-1000 one after 10,000 s; and the claim can use a plain index.';
COMMENT ON COLUMN public.job_queue.run_after IS 'Not claimable before this time (retry backoff).';
COMMENT ON COLUMN public.job_queue.lease_token IS 'Fencing token of the current claim; complete/fail/release/extend must present it. A new claim makes a new one.';
COMMENT ON COLUMN public.job_queue.lease_expires_at IS 'When a silent worker loses the job: the next claim (or the reaper) requeues it. NULL for a job handed off to an external provider (tracked by status polling instead).';

CREATE TABLE IF NOT EXISTS public.concurrency_limits (
    scope_type  text        NOT NULL CHECK (scope_type IN ('global', 'organization', 'user')),
    scope_id    text        NOT NULL,
    max_running integer     NOT NULL CHECK (max_running >= 0),
    running     integer     NOT NULL DEFAULT 0 CHECK (running >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope_type, scope_id),
    CONSTRAINT concurrency_limits_global_id CHECK ((scope_type = 'global') = (scope_id = ''))
);
COMMENT ON TABLE public.concurrency_limits IS
    'One row per limited scope (global, an organisation, a user) with its exact count of running jobs. Rows are locked in (scope_type, scope_id) order by every function that changes a count, so the limit holds under any concurrency and no two claims deadlock. A scope without a row is unlimited.';
COMMENT ON COLUMN public.concurrency_limits.running IS 'Jobs of this scope holding a slot (job_queue.status = running); kept exact by the job functions.';

CREATE TABLE IF NOT EXISTS public.approval_rules (
    name                 text        PRIMARY KEY CHECK (btrim(name) <> ''),
    job_type             text,
    provider             text,
    min_estimated_cost   numeric,
    approval_ttl_seconds integer     NOT NULL DEFAULT 3600 CHECK (approval_ttl_seconds > 0),
    allow_self_approval  boolean     NOT NULL DEFAULT false,
    enabled              boolean     NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.approval_rules IS
    'A submitted job needs approval when an enabled rule matches it: every condition the rule sets (job_type equal, provider equal, estimated_cost >= min_estimated_cost) holds. A rule that sets none matches every job.';

CREATE TABLE IF NOT EXISTS public.approval_requests (
    request_id          uuid        PRIMARY KEY DEFAULT hub_internal.func_uuid_v7(),
    job_id              uuid        NOT NULL UNIQUE REFERENCES public.jobs (job_id) ON DELETE CASCADE,
    requested_by        text        NOT NULL,
    rule_names          text[]      NOT NULL,
    allow_self_approval boolean     NOT NULL,
    status              text        NOT NULL CONSTRAINT approval_requests_status_check CHECK (status IN
                            ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    expires_at          timestamptz NOT NULL,
    decided_by          text,
    decided_at          timestamptz,
    note                text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS approval_requests_pending_idx
    ON public.approval_requests (expires_at) WHERE status = 'pending';
COMMENT ON TABLE public.approval_requests IS
    'One per job that matched an approval rule. pending until approved, rejected, cancelled (with its job) or expired (func_expire_approvals(), and an approval after expires_at is refused).';
COMMENT ON COLUMN public.approval_requests.allow_self_approval IS 'true only when every matching rule allows the submitter to approve their own job.';
COMMENT ON COLUMN public.approval_requests.expires_at IS 'Deadline: now() at submit + the shortest approval_ttl_seconds of the matching rules.';

CREATE TABLE IF NOT EXISTS public.job_events (
    event_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid        NOT NULL REFERENCES public.jobs (job_id) ON DELETE CASCADE,
    event_type  text        NOT NULL,
    from_status text,
    to_status   text,
    worker_id   text,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS job_events_job_idx ON public.job_events (job_id, event_id);
COMMENT ON TABLE public.job_events IS
    'Every state change of every job, one row each (submitted, approved, rejected, approval_expired, claimed, completed, retry_scheduled, failed, released, lease_expired, cancelled, provider_status). created_at is clock_timestamp(): the moment within the transaction, so a claim that waited for another job''s completion is stamped after it.';

-- The workers table of 0004 is reused as it is: the reaper sets status = 'dead'.

SELECT hub_internal.func_hub_secure(
    p_tables => ARRAY['public.hub_users', 'public.jobs', 'public.job_queue',
                      'public.concurrency_limits', 'public.approval_rules',
                      'public.approval_requests', 'public.job_events']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy(t)
  FROM unnest(ARRAY['public.hub_users', 'public.jobs', 'public.job_queue',
                    'public.concurrency_limits', 'public.approval_rules',
                    'public.approval_requests', 'public.job_events']::regclass[]) AS t;
-- The identity sequence of job_events: nothing for PUBLIC/anon/authenticated either
-- (inserting into an identity column needs no privilege on its sequence).
DO $$
DECLARE
    v_role text;
BEGIN
    REVOKE ALL ON SEQUENCE public.job_events_event_id_seq FROM PUBLIC;
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON SEQUENCE public.job_events_event_id_seq FROM %I', v_role);
        END IF;
    END LOOP;
END;
$$;

-- Cancelled jobs whose remote copy may still run (sql/functions/jobs/remote_cancels.sql).
-- Tiny by construction: only cancelled jobs whose remote copy may still run.
CREATE INDEX IF NOT EXISTS jobs_remote_cancel_idx
    ON public.jobs (provider, job_id)
 WHERE status = 'cancelled' AND provider_job_id IS NOT NULL
   AND provider_status IN ('pending', 'uploading', 'queued', 'running');
