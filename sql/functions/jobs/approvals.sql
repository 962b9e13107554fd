-- sql/functions/jobs/approvals.sql
-- Approval rules, approve / reject, approval expiry (submit, which applies the rules, is
-- in jobs/submit.sql).
-- The seed expired approvals by listing pending requests and then updating them one by
-- one, so an approval landing in between was overwritten. Here expiry is ONE statement
-- whose UPDATE re-checks status = 'pending' on every row it locks, and a decision locks
-- the request row first and checks the deadline at that moment: whichever commits
-- first wins, the other sees the outcome (see README "Jobs").

CREATE OR REPLACE FUNCTION public.func_upsert_approval_rule(
    name text,
    job_type text DEFAULT NULL,
    provider text DEFAULT NULL,
    min_estimated_cost numeric DEFAULT NULL,
    approval_ttl_seconds integer DEFAULT 3600,
    allow_self_approval boolean DEFAULT false,
    enabled boolean DEFAULT true
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_rule public.approval_rules%ROWTYPE;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(name) > 255 THEN
        RAISE EXCEPTION 'approval rule name must be a non-blank text of at most 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(job_type) > 255 OR length(provider) > 255 THEN
        RAISE EXCEPTION 'job_type and provider take at most 255 characters each' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF approval_ttl_seconds IS NULL OR approval_ttl_seconds <= 0 THEN
        RAISE EXCEPTION 'approval_ttl_seconds must be a positive number of seconds, got %',
                        coalesce(approval_ttl_seconds::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_estimated_cost < 0 THEN
        RAISE EXCEPTION 'min_estimated_cost must be >= 0 or null, got %', min_estimated_cost
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.approval_rules AS r (name, job_type, provider, min_estimated_cost,
                                           approval_ttl_seconds, allow_self_approval, enabled)
    VALUES (name, nullif(btrim(job_type), ''), nullif(btrim(provider), ''), min_estimated_cost,
            approval_ttl_seconds, coalesce(allow_self_approval, false), coalesce(enabled, true))
    ON CONFLICT ON CONSTRAINT approval_rules_pkey DO UPDATE SET
        job_type = EXCLUDED.job_type, provider = EXCLUDED.provider,
        min_estimated_cost = EXCLUDED.min_estimated_cost,
        approval_ttl_seconds = EXCLUDED.approval_ttl_seconds,
        allow_self_approval = EXCLUDED.allow_self_approval,
        enabled = EXCLUDED.enabled, updated_at = now()
    RETURNING r.* INTO v_rule;
    RETURN to_jsonb(v_rule);
END;
$$;
COMMENT ON FUNCTION public.func_upsert_approval_rule(text, text, text, numeric, integer, boolean, boolean) IS
    'Creates or replaces the approval rule called name. A job matches when every condition set holds: job_type equal, provider equal, estimated_cost >= min_estimated_cost (a job without an estimated cost never matches a cost rule). Returns the rule row.';

-- The one path of approve and reject.
CREATE OR REPLACE FUNCTION hub_internal.func_job_decide(p_request_id uuid, p_decided_by text, p_note text, p_approve boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    r public.approval_requests%ROWTYPE;
    v_verb text := CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END;
    v_now timestamptz := clock_timestamp();
    v_provider text;
    v_entry text;
BEGIN
    IF p_request_id IS NULL THEN
        RAISE EXCEPTION 'request_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_decided_by IS NULL OR btrim(p_decided_by) = '' OR length(p_decided_by) > 255 THEN
        RAISE EXCEPTION 'decided_by must name who decides (a non-blank text of at most 255 characters)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(p_note) > 1000 THEN
        RAISE EXCEPTION 'note is % characters; at most 1000 are accepted', length(p_note) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO r FROM public.approval_requests WHERE request_id = p_request_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown approval request %', p_request_id USING ERRCODE = 'P0001';
    END IF;
    IF r.status = 'expired' OR (r.status = 'pending' AND r.expires_at <= v_now) THEN
        RAISE EXCEPTION 'approval request % expired at %; it can no longer be % (submit the job again)',
                        p_request_id, r.expires_at, v_verb USING ERRCODE = 'P0001';
    END IF;
    IF r.status <> 'pending' THEN
        RAISE EXCEPTION 'approval request % is already %; only a pending request can be %',
                        p_request_id, r.status, v_verb USING ERRCODE = 'P0001';
    END IF;
    IF p_approve AND p_decided_by = r.requested_by AND NOT r.allow_self_approval THEN
        RAISE EXCEPTION 'self-approval refused: % submitted this job and rule(s) % do not allow self-approval; another user must approve',
                        p_decided_by, array_to_string(r.rule_names, ', ') USING ERRCODE = 'P0001';
    END IF;

    UPDATE public.approval_requests
       SET status = v_verb, decided_by = p_decided_by, decided_at = v_now, note = p_note
     WHERE request_id = p_request_id;
    -- A job scheduled for later (run_at) waits for it; its aging starts then.
    UPDATE public.job_queue q
       SET status = CASE WHEN NOT p_approve THEN 'cancelled'
                         WHEN q.run_after > now() THEN 'scheduled' ELSE 'queued' END,
           -- a finished entry's run_after is when it finished (retention walks it)
           enqueued_at = now(), run_after = CASE WHEN p_approve THEN greatest(q.run_after, now()) ELSE now() END,
           claim_key = greatest(q.run_after, now()) - make_interval(secs => q.priority * 10), updated_at = now()
     WHERE q.job_id = r.job_id AND q.status = 'pending_approval'
    RETURNING q.provider, q.status INTO v_provider, v_entry;
    UPDATE public.jobs
       SET status = CASE WHEN p_approve THEN 'queued' ELSE 'cancelled' END,
           error = CASE WHEN p_approve THEN error ELSE format('approval rejected by %s', p_decided_by) END,
           cancelled_by = CASE WHEN p_approve THEN NULL ELSE p_decided_by END,
           finished_at = CASE WHEN p_approve THEN NULL ELSE now() END,
           updated_at = now()
     WHERE job_id = r.job_id;
    INSERT INTO public.job_events (job_id, event_type, from_status, to_status, details)
    VALUES (r.job_id, v_verb, 'awaiting_approval', CASE WHEN p_approve THEN 'queued' ELSE 'cancelled' END,
            jsonb_strip_nulls(jsonb_build_object('request_id', p_request_id, 'decided_by', p_decided_by, 'note', p_note)));
    IF p_approve AND v_entry = 'queued' THEN
        PERFORM pg_notify('hub_jobs', v_provider);
    END IF;
    RETURN jsonb_build_object('request_id', p_request_id, 'job_id', r.job_id, 'status', v_verb,
                              'job_status', CASE WHEN p_approve THEN 'queued' ELSE 'cancelled' END,
                              'decided_by', p_decided_by, 'decided_at', v_now);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_decide(uuid, text, text, boolean) IS
    'Internal: the shared body of func_approve_request and func_reject_request.';

CREATE OR REPLACE FUNCTION public.func_approve_request(request_id uuid, decided_by text, note text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN hub_internal.func_job_decide(request_id, decided_by, note, true);
END;
$$;
COMMENT ON FUNCTION public.func_approve_request(uuid, text, text) IS
    'Approves a pending request: in the same transaction the job becomes queued (claimable, aging from now) and NOTIFY hub_jobs is sent. Refused (P0001, nothing changed) when the request is unknown, no longer pending, past its deadline at this moment, or decided_by is the submitter and a matching rule forbids self-approval. Returns {request_id, job_id, status, job_status, decided_by, decided_at}.';

CREATE OR REPLACE FUNCTION public.func_reject_request(request_id uuid, decided_by text, note text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    RETURN hub_internal.func_job_decide(request_id, decided_by, note, false);
END;
$$;
COMMENT ON FUNCTION public.func_reject_request(uuid, text, text) IS
    'Rejects a pending request: request rejected, queue entry and job cancelled, one event. Refused (P0001) when unknown, already decided or past its deadline. Returns {request_id, job_id, status, job_status, decided_by, decided_at}.';

CREATE OR REPLACE FUNCTION public.func_expire_approvals()
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH expired AS (
        -- Locks each due request; one an approval locked first is re-checked after it
        -- commits, is no longer pending, and is left alone.
        UPDATE public.approval_requests r
           SET status = 'expired', decided_at = now()
         WHERE r.status = 'pending' AND r.expires_at <= now()
        RETURNING r.request_id, r.job_id, r.expires_at
    ), queue AS (
        UPDATE public.job_queue q SET status = 'cancelled', run_after = now(), updated_at = now()
          FROM expired e WHERE q.job_id = e.job_id
        RETURNING q.job_id
    ), job AS (
        UPDATE public.jobs j
           SET status = 'cancelled', finished_at = now(), updated_at = now(),
               error = format('approval request expired at %s', e.expires_at)
          FROM expired e WHERE j.job_id = e.job_id
        RETURNING j.job_id
    ), events AS (
        INSERT INTO public.job_events (job_id, event_type, from_status, to_status, details)
        SELECT e.job_id, 'approval_expired', 'awaiting_approval', 'cancelled',
               jsonb_build_object('request_id', e.request_id, 'expires_at', e.expires_at,
                                  'queue_status', 'failed')
          FROM expired e
        RETURNING job_id
    )
    SELECT jsonb_build_object(
               'expired', count(*),
               'job_ids', coalesce(jsonb_agg(e.job_id ORDER BY e.job_id), '[]'::jsonb),
               'request_ids', coalesce(jsonb_agg(e.request_id ORDER BY e.job_id), '[]'::jsonb))
      FROM expired e
$$;
COMMENT ON FUNCTION public.func_expire_approvals() IS
    'Expires every pending approval request past its deadline in one statement: request -> expired, queue entry and job -> cancelled, one approval_expired event per job. Safe to run concurrently with approvals and with itself: each request ends in exactly one terminal state. Returns {expired, job_ids, request_ids}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_upsert_approval_rule(text, text, text, numeric, integer, boolean, boolean)',
        'hub_internal.func_job_decide(uuid, text, text, boolean)',
        'public.func_approve_request(uuid, text, text)',
        'public.func_reject_request(uuid, text, text)',
        'public.func_expire_approvals()'
    ]::regprocedure[]);
