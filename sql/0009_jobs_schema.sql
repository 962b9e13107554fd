-- 0009_jobs_schema.sql
-- The job hub's tables, and the read functions over them (at the end). Functions in 0010..0012 are the only way in (RLS on, nothing for
-- anon/authenticated). What earlier systems got wrong, and what this schema does instead:
--   * a "count running, then claim" limit check is exceeded under contention -> one
--     counter row per limited scope (concurrency_limits.running), changed only while the
--     row is locked and never above max_running (CHECK below; claims lock counters in
--     one fixed order, see 0010);
--   * a job dispatched twice / a dead worker overwriting a finished job -> every claim
--     gets a new lease_token; complete/fail/release accept only the current token;
--   * a hot queue table grown huge -> job_queue holds scheduling state only (payloads,
--     results and history live in jobs / job_events) and its claim index is partial;
--   * list-then-update approval expiry -> one set-based statement in 0011.
-- Idempotent: safe to run again in the SQL editor or with psql -v ON_ERROR_STOP=1 -f.

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
    job_id           uuid        PRIMARY KEY DEFAULT public.func_uuid_v7(),
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
    request_id          uuid        PRIMARY KEY DEFAULT public.func_uuid_v7(),
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

-- The workers table of 0005 is reused as it is: the reaper sets status = 'dead'.

SELECT public.func_hub_secure(
    p_tables => ARRAY['public.hub_users', 'public.jobs', 'public.job_queue',
                      'public.concurrency_limits', 'public.approval_rules',
                      'public.approval_requests', 'public.job_events']::regclass[]);
SELECT public.func_hub_service_role_policy(t)
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

-- The reads. Keyset pages (never "the newest 100"): pass the returned next as after_job_id.
CREATE OR REPLACE FUNCTION public.func_queue_statistics()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'depth_by_state', (
            SELECT jsonb_object_agg(s.state, coalesce(c.n, 0))
              FROM unnest(ARRAY['awaiting_approval', 'queued', 'running', 'completed', 'failed', 'cancelled']) AS s(state)
              LEFT JOIN (SELECT j.status, count(*) AS n FROM public.jobs j GROUP BY j.status) c ON c.status = s.state),
        'running_by_user', (
            SELECT coalesce(jsonb_agg(jsonb_build_object('user_id', r.user_id, 'running', r.n) ORDER BY r.n DESC, r.user_id), '[]'::jsonb)
              FROM (SELECT q.user_id, count(*) AS n FROM public.job_queue q WHERE q.status = 'running' GROUP BY q.user_id) r),
        'running_by_organization', (
            SELECT coalesce(jsonb_agg(jsonb_build_object('organization_id', r.organization_id, 'running', r.n)
                                      ORDER BY r.n DESC, r.organization_id), '[]'::jsonb)
              FROM (SELECT q.organization_id, count(*) AS n FROM public.job_queue q WHERE q.status = 'running'
                     GROUP BY q.organization_id) r),
        'oldest_waiting', (
            SELECT jsonb_build_object('job_id', q.job_id, 'queued_at', q.enqueued_at,
                                      'age_seconds', round(extract(epoch FROM now() - q.enqueued_at)::numeric, 3))
              FROM public.job_queue q WHERE q.status = 'queued' ORDER BY q.enqueued_at LIMIT 1),
        'limits', (
            SELECT coalesce(jsonb_agg(jsonb_build_object('scope_type', l.scope_type, 'scope_id', nullif(l.scope_id, ''),
                                                         'max_running', l.max_running, 'running', l.running)
                                      ORDER BY l.scope_type, l.scope_id), '[]'::jsonb)
              FROM public.concurrency_limits l))
$$;
COMMENT ON FUNCTION public.func_queue_statistics() IS
    'Queue health computed by the database: {depth_by_state: {awaiting_approval, queued, running, completed, failed, cancelled}, running_by_user: [{user_id, running}], running_by_organization: [{organization_id, running}], oldest_waiting: {job_id, queued_at, age_seconds} | null, limits: [{scope_type, scope_id, max_running, running}]}.';

CREATE OR REPLACE FUNCTION public.func_job_summary(j public.jobs)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'job_id', j.job_id, 'user_id', j.user_id, 'organization_id', j.organization_id,
        'job_type', j.job_type, 'provider', j.provider, 'priority', j.priority, 'status', j.status,
        'attempts', j.attempts, 'max_attempts', j.max_attempts, 'estimated_cost', j.estimated_cost,
        'submitted_at', j.submitted_at, 'started_at', j.started_at, 'finished_at', j.finished_at,
        'error', j.error, 'provider_job_id', j.provider_job_id, 'provider_status', j.provider_status)
$$;
COMMENT ON FUNCTION public.func_job_summary(public.jobs) IS
    'Internal: the row shape of func_list_jobs (a job without payload, result and history).';

CREATE OR REPLACE FUNCTION public.func_list_jobs(
    status text DEFAULT NULL, user_id text DEFAULT NULL, after_job_id uuid DEFAULT NULL, row_limit integer DEFAULT 50
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_rows jsonb;
    v_count integer;
BEGIN
    IF status IS NOT NULL AND status NOT IN ('awaiting_approval', 'queued', 'running', 'completed', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'unknown job status %; accepted: awaiting_approval, queued, running, completed, failed, cancelled',
                        quote_literal(status) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF row_limit IS NULL OR row_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'row_limit must be between 1 and 1000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(public.func_job_summary(x) ORDER BY x.job_id DESC), '[]'::jsonb), count(*)
      INTO v_rows, v_count
      FROM (SELECT * FROM public.jobs j
             WHERE (status IS NULL OR j.status = status)
               AND (user_id IS NULL OR j.user_id = user_id)
               AND (after_job_id IS NULL OR j.job_id < after_job_id)
             ORDER BY j.job_id DESC
             LIMIT row_limit + 1) x;
    IF v_count > row_limit THEN
        v_rows := v_rows - row_limit;
    END IF;
    RETURN jsonb_build_object('rows', v_rows, 'more', v_count > row_limit,
                              'next', CASE WHEN v_count > row_limit THEN v_rows -> (row_limit - 1) -> 'job_id' END);
END;
$$;
COMMENT ON FUNCTION public.func_list_jobs(text, text, uuid, integer) IS
    'Jobs newest first (ids are UUIDv7), optionally of one status and/or user, row_limit (1..1000) per page: {rows, more, next}; pass next as after_job_id for the following page. Unknown status: invalid_parameter_value.';

CREATE OR REPLACE FUNCTION public.func_get_job(job_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_job jsonb;
BEGIN
    SELECT to_jsonb(j) INTO v_job FROM public.jobs j WHERE j.job_id = job_id;
    IF v_job IS NULL THEN
        RAISE EXCEPTION 'unknown job %', coalesce(job_id::text, 'NULL') USING ERRCODE = 'P0001';
    END IF;
    RETURN v_job || jsonb_build_object(
        -- the lease token is the worker's fencing secret: never handed out here
        'queue', (SELECT to_jsonb(q) - 'lease_token' FROM public.job_queue q WHERE q.job_id = job_id),
        'approval_request', (SELECT to_jsonb(r) FROM public.approval_requests r WHERE r.job_id = job_id),
        'events', (SELECT coalesce(jsonb_agg(to_jsonb(e) - 'job_id' ORDER BY e.event_id), '[]'::jsonb)
                     FROM public.job_events e WHERE e.job_id = job_id));
END;
$$;
COMMENT ON FUNCTION public.func_get_job(uuid) IS
    'One job with its queue entry (without the lease token), its approval request (or null) and all its events in order. Unknown job: P0001.';

CREATE OR REPLACE FUNCTION public.func_list_active_provider_jobs(
    provider text, after_job_id uuid DEFAULT NULL, row_limit integer DEFAULT 500
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_rows jsonb;
    v_count integer;
BEGIN
    IF provider IS NULL OR btrim(provider) = '' THEN
        RAISE EXCEPTION 'provider must be a non-blank text' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF row_limit IS NULL OR row_limit NOT BETWEEN 1 AND 5000 THEN
        RAISE EXCEPTION 'row_limit must be between 1 and 5000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'job_id', x.job_id, 'provider_job_id', x.provider_job_id, 'status', x.status,
               'provider_status', x.provider_status) ORDER BY x.job_id), '[]'::jsonb), count(*)
      INTO v_rows, v_count
      FROM (SELECT j.job_id, j.provider_job_id, j.status, j.provider_status FROM public.jobs j
             WHERE j.provider = provider AND j.status IN ('queued', 'running')
               AND (after_job_id IS NULL OR j.job_id > after_job_id)
             ORDER BY j.job_id
             LIMIT row_limit + 1) x;
    IF v_count > row_limit THEN
        v_rows := v_rows - row_limit;
    END IF;
    RETURN jsonb_build_object('rows', v_rows, 'more', v_count > row_limit,
                              'next', CASE WHEN v_count > row_limit THEN v_rows -> (row_limit - 1) -> 'job_id' END);
END;
$$;
COMMENT ON FUNCTION public.func_list_active_provider_jobs(text, uuid, integer) IS
    'Every active (queued or running) job of a provider, oldest first, keyset-paged: {rows: [{job_id, provider_job_id, status, provider_status}], more, next}. provider_status is the provider''s own (pending, uploading, queued, running); status the hub''s. Status polling walks all pages, so no active job is ever missed.';

SELECT public.func_hub_secure(p_functions => ARRAY[
    'public.func_queue_statistics()',
    'public.func_job_summary(public.jobs)',
    'public.func_list_jobs(text, text, uuid, integer)',
    'public.func_get_job(uuid)',
    'public.func_list_active_provider_jobs(text, uuid, integer)'
]::regprocedure[]);
