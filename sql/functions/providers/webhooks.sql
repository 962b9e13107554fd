-- sql/functions/providers/webhooks.sql
-- Applying a provider webhook exactly once (table in sql/migrations/0085): the delivery
-- row and the job's status change commit together, so a replay or a second instance
-- receiving the same delivery at the same moment finds the row and changes nothing (the
-- second INSERT waits on the first one's unique-index entry, then sees the conflict).
-- The HTTP route checks the allowlist and the signature before calling; this function
-- only sees deliveries that passed them.

CREATE OR REPLACE FUNCTION public.func_record_webhook(
    provider text, delivery_id text, provider_job_id text DEFAULT NULL, job_id text DEFAULT NULL,
    status text DEFAULT NULL, details jsonb DEFAULT '{}'::jsonb, payload_sha256 text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_job uuid;
    v_job_provider text;
    v_inserted integer;
    v_result jsonb;
    v_outcome text;
BEGIN
    IF provider IS NULL OR provider !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'provider must be a provider name (lower-case letters, digits, ".", "_" or "-", at most 63), got %',
            coalesce(quote_literal(left(provider, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF delivery_id IS NULL OR delivery_id = '' OR length(delivery_id) > 255 THEN
        RAISE EXCEPTION 'delivery_id must be a non-empty text of at most 255 characters (the webhook-id header)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(provider_job_id) > 255 THEN
        RAISE EXCEPTION 'id (the provider''s job id) is % characters; at most 255 are accepted', length(provider_job_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF provider_job_id IS NULL AND job_id IS NULL THEN
        RAISE EXCEPTION 'the webhook names no job: send "id" (the provider''s job id) and/or "job_id" (the hub''s)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF job_id IS NOT NULL AND job_id !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' THEN
        RAISE EXCEPTION 'job_id % is not a UUID; send the hub''s job id as given at submit', quote_literal(left(job_id, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF payload_sha256 IS NOT NULL AND payload_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'payload_sha256 must be 64 lower-case hex digits' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Resolve the job: the hub's id when given (it must be this provider's), else the
    -- provider's own id (jobs_provider_job_idx).
    IF job_id IS NOT NULL THEN
        SELECT j.job_id, j.provider INTO v_job, v_job_provider FROM public.jobs j WHERE j.job_id = job_id::uuid;
        IF v_job_provider IS DISTINCT FROM provider THEN
            v_job := NULL;
        END IF;
    END IF;
    IF v_job IS NULL AND provider_job_id IS NOT NULL THEN
        SELECT j.job_id INTO v_job FROM public.jobs j
         WHERE j.provider = provider AND j.provider_job_id = provider_job_id
         ORDER BY j.job_id DESC LIMIT 1;
    END IF;
    v_outcome := CASE WHEN v_job IS NULL THEN 'ignored' ELSE 'unchanged' END;
    INSERT INTO public.webhook_deliveries AS d (provider, delivery_id, job_id, provider_job_id, status, outcome, payload_sha256)
    VALUES (provider, delivery_id, v_job, provider_job_id, status, v_outcome, payload_sha256)
    ON CONFLICT ON CONSTRAINT webhook_deliveries_pkey DO NOTHING;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    IF v_inserted = 0 THEN
        RETURN jsonb_build_object('outcome', 'duplicate', 'delivery_id', delivery_id);
    END IF;
    IF v_job IS NULL THEN
        RETURN jsonb_build_object('outcome', 'ignored', 'reason', 'unknown job', 'delivery_id', delivery_id);
    END IF;
    -- A job not (or no longer) dispatched is left alone: the provider gets a 200 (no
    -- retry storm), the delivery is remembered as ignored.
    IF NOT EXISTS (SELECT 1 FROM public.job_queue q WHERE q.job_id = v_job AND q.status IN ('running', 'completed', 'failed', 'cancelled')) THEN
        UPDATE public.webhook_deliveries d SET outcome = 'ignored'
         WHERE d.provider = provider AND d.delivery_id = delivery_id;
        RETURN jsonb_build_object('outcome', 'ignored', 'reason', 'job not dispatched', 'job_id', v_job,
                                  'delivery_id', delivery_id);
    END IF;
    v_result := public.func_record_provider_status(v_job, status, provider_job_id, details);
    IF (v_result ->> 'changed')::boolean THEN
        UPDATE public.webhook_deliveries d SET outcome = 'applied'
         WHERE d.provider = provider AND d.delivery_id = delivery_id;
    END IF;
    RETURN jsonb_build_object('outcome', CASE WHEN (v_result ->> 'changed')::boolean THEN 'applied' ELSE 'unchanged' END,
                              'job_id', v_job, 'delivery_id', delivery_id)
           || (v_result - 'changed');
END;
$$;
COMMENT ON FUNCTION public.func_record_webhook(text, text, text, text, text, jsonb, text) IS
    'Applies one provider webhook delivery once: records (provider, delivery_id) in webhook_deliveries and, in the same transaction, the job''s status through func_record_provider_status() (a finished job frees its limit slot at once). The job is the hub job_id when it belongs to the provider, else the newest job with that provider_job_id. Returns {outcome: applied|unchanged|duplicate|ignored, job_id, delivery_id, status, provider_status, reason?}; a delivery seen before changes nothing (duplicate).';

CREATE OR REPLACE FUNCTION public.func_prune_webhook_deliveries(retention_days integer DEFAULT 7)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_deleted integer;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 OR retention_days > 3650 THEN
        RAISE EXCEPTION 'retention_days must be from 1 to 3650, got %', coalesce(retention_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM public.webhook_deliveries d WHERE d.received_at < clock_timestamp() - make_interval(days => retention_days);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN jsonb_build_object('deleted', v_deleted);
END;
$$;
COMMENT ON FUNCTION public.func_prune_webhook_deliveries(integer) IS
    'Forgets webhook deliveries older than retention_days (default 7; a provider''s redeliveries stop long before). Returns {deleted}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_record_webhook(text, text, text, text, text, jsonb, text)',
        'public.func_prune_webhook_deliveries(integer)'
    ]::regprocedure[]);
