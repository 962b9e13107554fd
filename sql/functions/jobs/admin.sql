-- sql/functions/jobs/admin.sql
-- Users and limits; cancel; the reaper; external providers' status. Locks as described
-- in jobs/claim.sql (a job's rows: request -> job_queue -> jobs; counters in
-- (scope_type, scope_id) order).

CREATE OR REPLACE FUNCTION public.func_upsert_hub_user(user_id text, organization_id text, display_name text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_row public.hub_users%ROWTYPE;
BEGIN
    IF user_id IS NULL OR btrim(user_id) = '' OR length(user_id) > 255 THEN
        RAISE EXCEPTION 'user_id must be a non-blank text of at most 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF organization_id IS NULL OR btrim(organization_id) = '' OR length(organization_id) > 255 THEN
        RAISE EXCEPTION 'organization_id must be a non-blank text of at most 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(display_name) > 255 THEN
        RAISE EXCEPTION 'display_name is % characters; at most 255 are accepted', length(display_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.hub_users AS u (user_id, organization_id, display_name)
    VALUES (user_id, organization_id, display_name)
    ON CONFLICT ON CONSTRAINT hub_users_pkey DO UPDATE SET
        organization_id = EXCLUDED.organization_id,
        display_name = coalesce(EXCLUDED.display_name, u.display_name),
        updated_at = now()
    RETURNING u.* INTO v_row;
    RETURN to_jsonb(v_row);
END;
$$;
COMMENT ON FUNCTION public.func_upsert_hub_user(text, text, text) IS
    'Registers a user (or moves them to another organisation). Jobs already submitted keep counting against the organisation they were submitted under. Returns the user row.';

CREATE OR REPLACE FUNCTION public.func_set_concurrency_limit(scope_type text, scope_id text, max_running integer)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_type text := lower(btrim(scope_type));
    v_id text := CASE WHEN lower(btrim(scope_type)) = 'global' THEN '' ELSE scope_id END;
    v_running integer;
BEGIN
    IF v_type IS NULL OR v_type NOT IN ('global', 'organization', 'user') THEN
        RAISE EXCEPTION 'unknown limit scope %; accepted: global, organization, user',
                        coalesce(quote_literal(scope_type), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_type <> 'global' AND (v_id IS NULL OR btrim(v_id) = '') THEN
        RAISE EXCEPTION 'a % limit needs the % id as scope_id', v_type, v_type USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_type = 'global' AND coalesce(scope_id, '') NOT IN ('', 'global') THEN
        RAISE EXCEPTION 'the global limit takes no scope_id (pass null), got %', quote_literal(scope_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_type = 'user' AND NOT EXISTS (SELECT 1 FROM public.hub_users u WHERE u.user_id = v_id) THEN
        RAISE EXCEPTION 'unknown user %; register it first with func_upsert_hub_user', quote_literal(v_id)
            USING ERRCODE = 'P0001';
    END IF;
    IF max_running < 0 THEN
        RAISE EXCEPTION 'max_running must be >= 0 (or null to remove the limit), got %', max_running
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Exclusive: no claim or completion is in flight while the count is taken, so a
    -- new counter starts exact (and an existing one is re-counted).
    PERFORM pg_advisory_xact_lock(x'6a6f62736c6f7473'::bigint);
    IF max_running IS NULL THEN
        DELETE FROM public.concurrency_limits c WHERE c.scope_type = v_type AND c.scope_id = v_id;
        RETURN jsonb_build_object('scope_type', v_type, 'scope_id', nullif(v_id, ''), 'max_running', NULL, 'running', NULL);
    END IF;
    SELECT count(*) INTO v_running FROM public.job_queue q
     WHERE q.status = 'running'
       AND (v_type = 'global' OR (v_type = 'organization' AND q.organization_id = v_id)
            OR (v_type = 'user' AND q.user_id = v_id));
    INSERT INTO public.concurrency_limits AS c (scope_type, scope_id, max_running, running)
    VALUES (v_type, v_id, max_running, v_running)
    ON CONFLICT ON CONSTRAINT concurrency_limits_pkey DO UPDATE SET
        max_running = EXCLUDED.max_running, running = EXCLUDED.running, updated_at = now();
    RETURN jsonb_build_object('scope_type', v_type, 'scope_id', nullif(v_id, ''), 'max_running', max_running, 'running', v_running);
END;
$$;
COMMENT ON FUNCTION public.func_set_concurrency_limit(text, text, integer) IS
    'Sets the most jobs that may run at once for scope_type global (scope_id null), organization or user; max_running null removes the limit. Lowering it below the running count stops new claims until enough finish. Returns {scope_type, scope_id, max_running, running}. Unknown scope: invalid_parameter_value; unknown user: P0001.';

CREATE OR REPLACE FUNCTION public.func_cancel_job(job_id uuid, cancelled_by text, reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    q public.job_queue%ROWTYPE;
    v_from text;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cancelled_by IS NULL OR btrim(cancelled_by) = '' OR length(cancelled_by) > 255 THEN
        RAISE EXCEPTION 'cancelled_by must name who cancels (a non-blank text of at most 255 characters)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is % characters; at most 1000 are accepted', length(reason)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(x'6a6f62736c6f7473'::bigint);
    PERFORM 1 FROM public.approval_requests r WHERE r.job_id = job_id AND r.status = 'pending' FOR UPDATE;
    SELECT * INTO q FROM public.job_queue jq WHERE jq.job_id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job %', job_id USING ERRCODE = 'P0001';
    END IF;
    SELECT j.status INTO v_from FROM public.jobs j WHERE j.job_id = job_id;
    IF v_from IN ('completed', 'failed', 'cancelled') THEN
        RETURN jsonb_build_object('accepted', false, 'status', v_from,
                                  'reason', format('the job is already %s', v_from));
    END IF;
    UPDATE public.approval_requests r
       SET status = 'cancelled', decided_by = cancelled_by, decided_at = now(), note = reason
     WHERE r.job_id = job_id AND r.status = 'pending';
    UPDATE public.job_queue jq
       SET status = 'cancelled', lease_token = NULL, lease_expires_at = NULL, run_after = now(), updated_at = now()
     WHERE jq.job_id = job_id;
    IF q.status = 'running' THEN
        PERFORM hub_internal.func_job_free_slots(ARRAY[q.user_id], ARRAY[q.organization_id]);
        -- The worker running it stops it now instead of at its next lease renewal: a
        -- LISTENing worker renews at once when it sees its own id (the payload names the
        -- worker, never the job's data).
        IF q.worker_id IS NOT NULL THEN
            PERFORM pg_notify('hub_jobs', 'cancel:' || q.worker_id);
        END IF;
    END IF;
    UPDATE public.jobs j
       SET status = 'cancelled', cancelled_by = cancelled_by,
           error = coalesce(reason, format('cancelled by %s', cancelled_by)),
           finished_at = now(), updated_at = now()
     WHERE j.job_id = job_id;
    INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
    VALUES (job_id, 'cancelled', v_from, 'cancelled', q.worker_id,
            jsonb_strip_nulls(jsonb_build_object('cancelled_by', cancelled_by, 'reason', reason)));
    RETURN jsonb_build_object('accepted', true, 'status', 'cancelled', 'reason', NULL, 'previous_status', v_from);
END;
$$;
COMMENT ON FUNCTION public.func_cancel_job(uuid, text, text) IS
    'Cancels a job in any non-terminal state (awaiting_approval: its request is cancelled too; running: its slot is freed, NOTIFY hub_jobs ''cancel:<worker_id>'' tells its worker to renew its leases at once (and so stop the run), and the worker''s later complete/fail is rejected as stale). cancelled_by: at most 255 characters; reason: at most 1000. Returns {accepted, status, reason, previous_status}; a finished job gets accepted=false. Unknown job: P0001.';

-- The reaper's release of running jobs, shared with a heartbeat that declares its own
-- worker dead (workers/heartbeat.sql: the seed's "crashed"): every running job whose
-- lease expired or whose worker is dead goes back to the queue (failed when it was the
-- last attempt), its slot freed, one event each (lease_expired or worker_dead), NOTIFY
-- per provider. p_worker_id limits it to one worker's jobs. SKIP LOCKED and at most 1000
-- per call: a job another transaction holds is left for the next pass.
CREATE OR REPLACE FUNCTION hub_internal.func_job_release_lost(p_worker_id text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_expired uuid[];
    v_orphaned uuid[];
    v_users text[] := '{}';
    v_orgs text[] := '{}';
    v_providers text[] := '{}';
    v_requeued integer := 0;
    v_failed integer := 0;
    v_row record;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(x'6a6f62736c6f7473'::bigint);
    -- Running jobs whose lease expired, or whose worker is (now) declared dead. Jobs
    -- handed off to an external provider have no lease and are left to status polling.
    SELECT coalesce(array_agg(x.job_id) FILTER (WHERE x.expired), '{}'),
           coalesce(array_agg(x.job_id) FILTER (WHERE NOT x.expired), '{}')
      INTO v_expired, v_orphaned
      FROM (SELECT q.job_id, q.lease_expires_at < now() AS expired
              FROM public.job_queue q
             WHERE q.status = 'running' AND q.lease_expires_at IS NOT NULL
               AND (p_worker_id IS NULL OR q.worker_id = p_worker_id)
               AND (q.lease_expires_at < now()
                    OR q.worker_id IN (SELECT w.worker_id FROM public.workers w WHERE w.status = 'dead'))
             ORDER BY q.job_id
             LIMIT 1000
             FOR UPDATE OF q SKIP LOCKED) x;
    FOR v_row IN
        SELECT * FROM hub_internal.func_job_requeue_lost(v_expired, 'lease_expired', 'lease expired')
        UNION ALL
        SELECT * FROM hub_internal.func_job_requeue_lost(v_orphaned, 'worker_dead', 'worker declared dead')
    LOOP
        v_users := v_users || v_row.user_id;
        v_orgs := v_orgs || v_row.organization_id;
        IF v_row.requeued THEN
            v_requeued := v_requeued + 1;
            v_providers := v_providers || v_row.provider;
        ELSE
            v_failed := v_failed + 1;
        END IF;
    END LOOP;
    PERFORM hub_internal.func_job_free_slots(v_users, v_orgs);
    PERFORM pg_notify('hub_jobs', p) FROM (SELECT DISTINCT unnest(v_providers) AS p) s;
    RETURN jsonb_build_object('requeued', v_requeued, 'failed', v_failed,
                              'job_ids', to_jsonb(v_expired || v_orphaned));
END;
$$;
COMMENT ON FUNCTION hub_internal.func_job_release_lost(text) IS
    'Puts running jobs whose lease expired or whose worker is dead (of p_worker_id only, when given) back in the queue, or fails them on their last attempt, freeing their slots; one event each (lease_expired or worker_dead); SKIP LOCKED, at most 1000 per call. Returns {requeued, failed, job_ids}. Called by func_reap_dead_workers and by a heartbeat that reports its worker dead.';

CREATE OR REPLACE FUNCTION public.func_reap_dead_workers(stale_after_seconds integer DEFAULT 30)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_dead text[];
    v_jobs jsonb;
BEGIN
    IF stale_after_seconds IS NULL OR stale_after_seconds NOT BETWEEN 1 AND 86400 THEN
        RAISE EXCEPTION 'stale_after_seconds must be between 1 and 86400, got %',
                        coalesce(stale_after_seconds::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(x'6a6f62736c6f7473'::bigint);
    -- A worker that declares a slower heartbeat (metadata heartbeat_seconds, as
    -- orchestrator worker does) is dead only after missing three of its own beats.
    WITH dead AS (
        UPDATE public.workers w SET status = 'dead'
         WHERE w.last_heartbeat_at < now() - make_interval(secs => stale_after_seconds)
           AND w.status NOT IN ('dead', 'stopped')
           AND (jsonb_typeof(w.metadata -> 'heartbeat_seconds') IS DISTINCT FROM 'number'
                OR w.last_heartbeat_at < now() - make_interval(
                       secs => 3 * least((w.metadata ->> 'heartbeat_seconds')::double precision, 86400)))
        RETURNING w.worker_id
    )
    SELECT coalesce(array_agg(worker_id ORDER BY worker_id), '{}') INTO v_dead FROM dead;
    v_jobs := hub_internal.func_job_release_lost();
    RETURN jsonb_build_object('dead_workers', cardinality(v_dead), 'dead_worker_ids', to_jsonb(v_dead))
           || v_jobs;
END;
$$;
COMMENT ON FUNCTION public.func_reap_dead_workers(integer) IS
    'Declares workers without a heartbeat for stale_after_seconds (and for three of their declared metadata.heartbeat_seconds) dead, and puts every running job whose lease expired or whose worker is dead back in the queue (failed when it was the last attempt), freeing its slot; one event each (lease_expired or worker_dead). Safe to run from several daemons at once (SKIP LOCKED). Returns {dead_workers, dead_worker_ids, requeued, failed, job_ids}. Claims requeue expired leases of their provider themselves, so the reaper is the backstop, not the only path.';

CREATE OR REPLACE FUNCTION public.func_record_provider_status(
    job_id uuid, status text, provider_job_id text DEFAULT NULL, details jsonb DEFAULT '{}'::jsonb,
    lease_token uuid DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_status text := lower(btrim(status));
    v_details jsonb := coalesce(nullif(details, 'null'::jsonb), '{}'::jsonb);
    q public.job_queue%ROWTYPE;
    j public.jobs%ROWTYPE;
    v_pjid text;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_status IS NULL OR v_status NOT IN ('pending', 'uploading', 'queued', 'running', 'completed', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'unknown provider status %; accepted: pending, uploading, queued, running, completed, failed, cancelled',
                        coalesce(quote_literal(status), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(v_details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object, got a JSON %', jsonb_typeof(v_details)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_column_size(v_details) > 65536 THEN
        RAISE EXCEPTION 'details is % bytes; at most 65536 are accepted', pg_column_size(v_details)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(provider_job_id) > 255 THEN
        RAISE EXCEPTION 'provider_job_id is % characters; at most 255 are accepted', length(provider_job_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(x'6a6f62736c6f7473'::bigint);
    SELECT * INTO q FROM public.job_queue jq WHERE jq.job_id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job %', job_id USING ERRCODE = 'P0001';
    END IF;
    SELECT * INTO j FROM public.jobs jb WHERE jb.job_id = job_id;
    -- Fenced like a worker's report: a dispatcher whose claim was taken back (its lease
    -- expired and another claim has the job) must not record its submission.
    IF lease_token IS NOT NULL AND (q.status <> 'running' OR q.lease_token IS DISTINCT FROM lease_token) THEN
        RETURN jsonb_build_object('changed', false, 'accepted', false, 'status', j.status,
                                  'provider_status', j.provider_status,
                                  'reason', format('stale lease token: the job is %s, no longer held under this lease', j.status));
    END IF;
    IF j.status IN ('completed', 'failed', 'cancelled') THEN
        RETURN jsonb_build_object('changed', false, 'status', j.status, 'provider_status', j.provider_status);
    END IF;
    IF q.status <> 'running' THEN
        RAISE EXCEPTION 'job % is %: a provider status can only be recorded for a job claimed for dispatch (running)',
                        job_id, j.status USING ERRCODE = 'P0001';
    END IF;
    v_pjid := coalesce(provider_job_id, j.provider_job_id);
    IF v_status NOT IN ('completed', 'failed', 'cancelled') THEN
        IF j.provider_status IS NOT DISTINCT FROM v_status AND j.provider_job_id IS NOT DISTINCT FROM v_pjid THEN
            RETURN jsonb_build_object('changed', false, 'status', j.status, 'provider_status', v_status);
        END IF;
        -- Once the provider has the job under its own id, status polling tracks it: the
        -- lease no longer applies (a daemon restart must not dispatch it twice).
        UPDATE public.job_queue jq
           SET lease_expires_at = CASE WHEN v_pjid IS NULL THEN jq.lease_expires_at END, updated_at = now()
         WHERE jq.job_id = job_id;
        UPDATE public.jobs jb
           SET provider_status = v_status, provider_job_id = v_pjid, provider_details = v_details, updated_at = now()
         WHERE jb.job_id = job_id;
        INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
        VALUES (job_id, 'provider_status', j.provider_status, v_status, q.worker_id,
                jsonb_strip_nulls(jsonb_build_object('provider_job_id', v_pjid, 'details', v_details)));
        RETURN jsonb_build_object('changed', true, 'status', j.status, 'provider_status', v_status);
    END IF;
    UPDATE public.job_queue jq
       SET status = v_status, lease_token = NULL, lease_expires_at = NULL, run_after = now(), updated_at = now()
     WHERE jq.job_id = job_id;
    PERFORM hub_internal.func_job_free_slots(ARRAY[q.user_id], ARRAY[q.organization_id]);
    UPDATE public.jobs jb
       SET status = v_status, provider_status = v_status, provider_job_id = v_pjid, provider_details = v_details,
           result = CASE WHEN v_status = 'completed' THEN v_details END,
           error = CASE WHEN v_status = 'failed' THEN coalesce(v_details ->> 'error', 'the provider reported failed')
                        WHEN v_status = 'cancelled' THEN 'cancelled by the provider' END,
           finished_at = now(), updated_at = now()
     WHERE jb.job_id = job_id;
    INSERT INTO public.job_events (job_id, event_type, from_status, to_status, worker_id, details)
    VALUES (job_id, v_status, 'running', v_status, q.worker_id,
            jsonb_strip_nulls(jsonb_build_object('provider_job_id', v_pjid, 'provider_status', v_status,
                                                 'details', v_details)));
    RETURN jsonb_build_object('changed', true, 'status', v_status, 'provider_status', v_status);
END;
$$;
COMMENT ON FUNCTION public.func_record_provider_status(uuid, text, text, jsonb, uuid) IS
    'Records what an external provider reports for a dispatched (running) job. With lease_token (the dispatcher''s claim) it is fenced as complete/fail are: a token that is no longer current changes nothing and returns {changed: false, accepted: false, reason}. details: at most 64 KiB; provider_job_id: at most 255 characters. Non-terminal statuses (pending, uploading, queued, running) change jobs.provider_status and write a provider_status event only when the status or provider_job_id changed; once provider_job_id is known the lease is dropped (polling tracks the job). Terminal statuses (completed, failed, cancelled) end the job, free its slot and write one event. Returns {changed, status, provider_status}; a job already finished gets changed=false.';

-- Pausing a queue: claims skip it (sql/functions/jobs/claim.sql), its jobs stay queued.
CREATE OR REPLACE FUNCTION public.func_pause_queue(provider text, job_type text DEFAULT NULL,
                                                   paused_by text DEFAULT 'admin', reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_row public.queue_pauses%ROWTYPE;
BEGIN
    IF provider IS NULL OR btrim(provider) = '' OR length(provider) > 255 THEN
        RAISE EXCEPTION 'provider must be a non-blank text of at most 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(job_type) > 255 THEN
        RAISE EXCEPTION 'job_type is % characters; at most 255 are accepted', length(job_type) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF paused_by IS NULL OR btrim(paused_by) = '' OR length(paused_by) > 255 THEN
        RAISE EXCEPTION 'paused_by must name who pauses (a non-blank text of at most 255 characters)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(reason) > 1000 THEN
        RAISE EXCEPTION 'reason is % characters; at most 1000 are accepted', length(reason) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.queue_pauses AS p (provider, job_type, paused_by, reason)
    VALUES (provider, coalesce(job_type, ''), paused_by, reason)
    ON CONFLICT ON CONSTRAINT queue_pauses_pkey DO UPDATE SET
        paused_by = EXCLUDED.paused_by, reason = EXCLUDED.reason
    RETURNING p.* INTO v_row;
    RETURN jsonb_build_object('provider', v_row.provider, 'job_type', nullif(v_row.job_type, ''),
                              'paused', true, 'paused_by', v_row.paused_by, 'reason', v_row.reason,
                              'paused_at', v_row.paused_at);
END;
$$;
COMMENT ON FUNCTION public.func_pause_queue(text, text, text, text) IS
    'Pauses a provider''s queue (job_type null: every job type) or one job type of it: claims skip its jobs, which stay queued (running ones run on). Idempotent. Returns {provider, job_type, paused, paused_by, reason, paused_at}.';

CREATE OR REPLACE FUNCTION public.func_resume_queue(provider text, job_type text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_resumed integer;
BEGIN
    IF provider IS NULL OR btrim(provider) = '' OR length(provider) > 255 THEN
        RAISE EXCEPTION 'provider must be a non-blank text of at most 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM public.queue_pauses p WHERE p.provider = provider AND p.job_type = coalesce(job_type, '');
    GET DIAGNOSTICS v_resumed = ROW_COUNT;
    IF v_resumed > 0 THEN
        PERFORM pg_notify('hub_jobs', provider);  -- its queued jobs are claimable again
    END IF;
    RETURN jsonb_build_object('provider', provider, 'job_type', job_type, 'resumed', v_resumed > 0);
END;
$$;
COMMENT ON FUNCTION public.func_resume_queue(text, text) IS
    'Resumes what func_pause_queue paused (the same provider and job_type; null = the provider-wide pause) and sends NOTIFY hub_jobs. Returns {provider, job_type, resumed}: resumed is false when it was not paused.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_upsert_hub_user(text, text, text)',
        'public.func_set_concurrency_limit(text, text, integer)',
        'public.func_cancel_job(uuid, text, text)',
        'hub_internal.func_job_release_lost(text)',
        'public.func_reap_dead_workers(integer)',
        'public.func_record_provider_status(uuid, text, text, jsonb, uuid)',
        'public.func_pause_queue(text, text, text, text)',
        'public.func_resume_queue(text, text)'
    ]::regprocedure[]);
