-- sql/functions/jobs/approvals.sql
-- Submit (with approval rules), approve / reject, approval expiry.
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
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'approval rule name must be a non-blank text' USING ERRCODE = 'invalid_parameter_value';
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

CREATE OR REPLACE FUNCTION public.func_submit_job(job jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_keys constant text[] := ARRAY['user_id', 'job_type', 'provider', 'priority', 'payload',
                                    'estimated_cost', 'max_attempts', 'idempotency_key'];
    v_unknown text;
    v_user text;
    v_org text;
    v_type text;
    v_provider text;
    v_priority integer;
    v_payload jsonb;
    v_cost numeric;
    v_attempts integer;
    v_key text;
    v_job_id uuid;
    v_rules text[];
    v_ttl integer;
    v_self boolean;
    v_request uuid;
    v_expires timestamptz;
    v_status text;
BEGIN
    IF job IS NULL OR jsonb_typeof(job) <> 'object' THEN
        RAISE EXCEPTION 'job must be a JSON object with user_id, job_type and payload, got %',
                        coalesce('a JSON ' || jsonb_typeof(job), 'SQL NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ' ORDER BY k) INTO v_unknown FROM jsonb_object_keys(job) AS k WHERE k <> ALL (v_keys);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown job key(s): %; accepted: %', v_unknown, array_to_string(v_keys, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(job -> 'user_id') IS DISTINCT FROM 'string' OR btrim(job ->> 'user_id') = '' THEN
        RAISE EXCEPTION 'user_id is required (a string naming a user registered with func_upsert_hub_user)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_user := job ->> 'user_id';
    SELECT organization_id INTO v_org FROM public.hub_users WHERE user_id = v_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user %; register it first with func_upsert_hub_user(user_id, organization_id)',
                        quote_literal(left(v_user, 100)) USING ERRCODE = 'P0001';
    END IF;
    IF jsonb_typeof(job -> 'job_type') IS DISTINCT FROM 'string' OR btrim(job ->> 'job_type') = ''
       OR length(job ->> 'job_type') > 255 THEN
        RAISE EXCEPTION 'job_type is required: a non-blank string of at most 255 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_type := job ->> 'job_type';
    IF job ? 'provider' AND (jsonb_typeof(job -> 'provider') <> 'string' OR btrim(job ->> 'provider') = '') THEN
        RAISE EXCEPTION 'provider must be a non-blank string (default ''local'')' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_provider := coalesce(job ->> 'provider', 'local');
    IF job ? 'priority' AND jsonb_typeof(job -> 'priority') <> 'null' AND NOT (CASE WHEN jsonb_typeof(job -> 'priority') = 'number' THEN
           (job ->> 'priority')::numeric = trunc((job ->> 'priority')::numeric)
           AND (job ->> 'priority')::numeric BETWEEN 0 AND 1000 ELSE false END) THEN
        RAISE EXCEPTION 'priority must be an integer from 0 to 1000 (higher runs first; default 100), got %',
                        job -> 'priority' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_priority := coalesce((job ->> 'priority')::numeric::integer, 100);
    v_payload := coalesce(nullif(job -> 'payload', 'null'::jsonb), '{}'::jsonb);
    IF jsonb_typeof(v_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object, got a JSON %', jsonb_typeof(v_payload)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_provider = 'local' THEN
        IF (v_payload ? 'command') = (v_payload ? 'callable') THEN
            RAISE EXCEPTION 'a local job''s payload needs exactly one of "command" (a shell command string) or "callable" ("module:function")'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_payload ? 'command' AND (jsonb_typeof(v_payload -> 'command') <> 'string'
                                      OR btrim(v_payload ->> 'command') = '') THEN
            RAISE EXCEPTION 'payload.command must be a non-empty shell command string, got %', v_payload -> 'command'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_payload ? 'callable' AND (jsonb_typeof(v_payload -> 'callable') <> 'string'
               OR (v_payload ->> 'callable') !~ '^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$') THEN
            RAISE EXCEPTION 'payload.callable must name a Python function as "module:function" (e.g. "mypkg.tasks:train"), got %',
                            v_payload -> 'callable' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_payload ? 'kwargs' AND jsonb_typeof(v_payload -> 'kwargs') <> 'object' THEN
            RAISE EXCEPTION 'payload.kwargs must be a JSON object of keyword arguments, got a JSON %',
                            jsonb_typeof(v_payload -> 'kwargs') USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    IF job ? 'estimated_cost' AND jsonb_typeof(job -> 'estimated_cost') <> 'null' AND NOT (CASE WHEN jsonb_typeof(job -> 'estimated_cost') = 'number'
                THEN (job ->> 'estimated_cost')::numeric >= 0 ELSE false END) THEN
        RAISE EXCEPTION 'estimated_cost must be a number >= 0 or null, got %', job -> 'estimated_cost'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_cost := (job ->> 'estimated_cost')::numeric;
    IF job ? 'max_attempts' AND jsonb_typeof(job -> 'max_attempts') <> 'null' AND NOT (CASE WHEN jsonb_typeof(job -> 'max_attempts') = 'number' THEN
           (job ->> 'max_attempts')::numeric = trunc((job ->> 'max_attempts')::numeric)
           AND (job ->> 'max_attempts')::numeric BETWEEN 1 AND 100 ELSE false END) THEN
        RAISE EXCEPTION 'max_attempts must be an integer from 1 to 100 (default 3), got %', job -> 'max_attempts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_attempts := coalesce((job ->> 'max_attempts')::numeric::integer, 3);
    IF job ? 'idempotency_key' AND jsonb_typeof(job -> 'idempotency_key') <> 'null' AND (
           jsonb_typeof(job -> 'idempotency_key') <> 'string' OR length(job ->> 'idempotency_key') NOT BETWEEN 1 AND 255) THEN
        RAISE EXCEPTION 'idempotency_key must be a string of 1 to 255 characters or null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_key := job ->> 'idempotency_key';

    SELECT array_agg(r.name ORDER BY r.name), min(r.approval_ttl_seconds), bool_and(r.allow_self_approval)
      INTO v_rules, v_ttl, v_self
      FROM public.approval_rules r
     WHERE r.enabled
       AND (r.job_type IS NULL OR r.job_type = v_type)
       AND (r.provider IS NULL OR r.provider = v_provider)
       AND (r.min_estimated_cost IS NULL OR v_cost >= r.min_estimated_cost);
    v_status := CASE WHEN v_rules IS NULL THEN 'queued' ELSE 'awaiting_approval' END;

    INSERT INTO public.jobs (user_id, organization_id, job_type, provider, priority, payload,
                             estimated_cost, max_attempts, idempotency_key, status)
    VALUES (v_user, v_org, v_type, v_provider, v_priority, v_payload, v_cost, v_attempts, v_key, v_status)
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING job_id INTO v_job_id;
    IF v_job_id IS NULL THEN
        -- Same user, same idempotency key: the job submitted before, unchanged.
        SELECT j.job_id, j.status, r.request_id, r.expires_at INTO v_job_id, v_status, v_request, v_expires
          FROM public.jobs j LEFT JOIN public.approval_requests r ON r.job_id = j.job_id
         WHERE j.user_id = v_user AND j.idempotency_key = v_key;
        RETURN jsonb_build_object('job_id', v_job_id, 'status', v_status, 'approval_request_id', v_request,
                                  'approval_expires_at', v_expires, 'duplicate', true);
    END IF;

    INSERT INTO public.job_queue (job_id, status, provider, job_type, user_id, organization_id,
                                  priority, max_attempts, enqueued_at, claim_key, run_after)
    VALUES (v_job_id, CASE WHEN v_rules IS NULL THEN 'queued' ELSE 'pending_approval' END,
            v_provider, v_type, v_user, v_org, v_priority, v_attempts,
            now(), now() - make_interval(secs => v_priority * 10), now());
    IF v_rules IS NOT NULL THEN
        v_expires := now() + make_interval(secs => v_ttl);
        INSERT INTO public.approval_requests (job_id, requested_by, rule_names, allow_self_approval,
                                              status, expires_at)
        VALUES (v_job_id, v_user, v_rules, v_self, 'pending', v_expires)
        RETURNING request_id INTO v_request;
    END IF;
    INSERT INTO public.job_events (job_id, event_type, from_status, to_status, details)
    VALUES (v_job_id, 'submitted', NULL, v_status,
            jsonb_strip_nulls(jsonb_build_object('user_id', v_user, 'priority', v_priority,
                                                 'approval_request_id', v_request, 'rules', to_jsonb(v_rules))));
    IF v_rules IS NULL THEN
        PERFORM pg_notify('hub_jobs', v_provider);
    END IF;
    RETURN jsonb_build_object('job_id', v_job_id, 'status', v_status, 'approval_request_id', v_request,
                              'approval_expires_at', v_expires, 'duplicate', false);
END;
$$;
COMMENT ON FUNCTION public.func_submit_job(jsonb) IS
    'Submits a job {user_id, job_type, provider=local, priority=100 (0..1000), payload, estimated_cost, max_attempts=3 (1..100), idempotency_key}. A local job''s payload needs "command" (non-empty string) or "callable" ("module:function", optional "kwargs" object). When enabled approval rules match, the job awaits approval (request deadline = now + the shortest matching TTL); otherwise it is queued and NOTIFY hub_jobs (payload: provider) is sent at commit. Returns {job_id, status, approval_request_id, approval_expires_at, duplicate}; a repeated (user_id, idempotency_key) returns the earlier job with duplicate=true. Bad input raises invalid_parameter_value, an unknown user P0001; nothing is written then.';

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
BEGIN
    IF p_request_id IS NULL THEN
        RAISE EXCEPTION 'request_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_decided_by IS NULL OR btrim(p_decided_by) = '' THEN
        RAISE EXCEPTION 'decided_by must name who decides (a non-blank text)' USING ERRCODE = 'invalid_parameter_value';
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
    UPDATE public.job_queue q
       SET status = CASE WHEN p_approve THEN 'queued' ELSE 'failed' END,
           enqueued_at = now(), run_after = now(),
           claim_key = now() - make_interval(secs => q.priority * 10), updated_at = now()
     WHERE q.job_id = r.job_id AND q.status = 'pending_approval'
    RETURNING q.provider INTO v_provider;
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
    IF p_approve THEN
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
    'Rejects a pending request: request rejected, queue entry failed, job cancelled, one event. Refused (P0001) when unknown, already decided or past its deadline. Returns {request_id, job_id, status, job_status, decided_by, decided_at}.';

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
        UPDATE public.job_queue q SET status = 'failed', updated_at = now()
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
    'Expires every pending approval request past its deadline in one statement: request -> expired, queue entry -> failed, job -> cancelled, one approval_expired event per job. Safe to run concurrently with approvals and with itself: each request ends in exactly one terminal state. Returns {expired, job_ids, request_ids}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_upsert_approval_rule(text, text, text, numeric, integer, boolean, boolean)',
        'public.func_submit_job(jsonb)',
        'hub_internal.func_job_decide(uuid, text, text, boolean)',
        'public.func_approve_request(uuid, text, text)',
        'public.func_reject_request(uuid, text, text)',
        'public.func_expire_approvals()'
    ]::regprocedure[]);
