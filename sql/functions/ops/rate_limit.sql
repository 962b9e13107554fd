-- sql/functions/ops/rate_limit.sql
-- The rate limiter (table in sql/migrations/0080): an exact sliding log per bucket, one
-- function call per decision, so several `orchestrator serve` instances on one database
-- share one limit. Pooler-safe: no session state, no prepared statement of its own, the
-- row lock is the only serialisation and it ends with the call's transaction. The time
-- is the database clock (clock_timestamp() taken after the lock), never an app host's.

CREATE OR REPLACE FUNCTION hub_internal.func_rate_limit_check_args(
    p_bucket text, p_max_requests integer, p_window_seconds double precision
) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_bucket IS NULL OR length(p_bucket) < 1 OR length(p_bucket) > 512 THEN
        RAISE EXCEPTION 'bucket must be 1-512 characters, got %',
            coalesce(length(p_bucket)::text || ' characters', 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_max_requests IS NULL OR p_max_requests < 1 OR p_max_requests > 10000 THEN
        RAISE EXCEPTION 'max_requests must be from 1 to 10000, got %', coalesce(p_max_requests::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_window_seconds IS NULL OR p_window_seconds < 0.1 OR p_window_seconds > 86400 THEN
        RAISE EXCEPTION 'window_seconds must be from 0.1 to 86400, got %', coalesce(p_window_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_rate_limit_check_args(text, integer, double precision) IS
    'Internal: refuses a bucket outside 1-512 characters, max_requests outside 1-10000 or window_seconds outside 0.1-86400 (SQLSTATE 22023 naming the accepted range).';

CREATE OR REPLACE FUNCTION public.func_rate_limit_hit(
    bucket text, max_requests integer, window_seconds double precision, audit jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_window interval;
    v_now timestamptz;
    v_hits timestamptz[];
    v_first integer := 1;
    v_n integer;
    v_count integer;
    v_allowed boolean;
    v_frees timestamptz;
    v_appended jsonb;
    v_audited boolean := false;
    v_audit_error text;
    v_last_audited timestamptz;
    v_violations bigint;
BEGIN
    IF bucket IS NULL OR length(bucket) NOT BETWEEN 1 AND 512 OR max_requests IS NULL
       OR max_requests NOT BETWEEN 1 AND 10000 OR window_seconds IS NULL
       OR window_seconds NOT BETWEEN 0.1 AND 86400 THEN
        PERFORM hub_internal.func_rate_limit_check_args(bucket, max_requests, window_seconds);  -- raises
    END IF;
    v_window := make_interval(secs => window_seconds);
    -- The usual case first: the bucket exists, lock it. Otherwise create it with its first
    -- hit; a concurrent creator wins the race and the lock is taken on its row.
    SELECT b.hits, b.last_audited_at, b.violations INTO v_hits, v_last_audited, v_violations
      FROM public.rate_limit_buckets b WHERE b.bucket = bucket FOR UPDATE;
    IF NOT FOUND THEN
        v_now := clock_timestamp();
        INSERT INTO public.rate_limit_buckets AS b (bucket, hits, window_seconds, updated_at)
        VALUES (bucket, ARRAY[v_now], window_seconds, v_now)
        ON CONFLICT ON CONSTRAINT rate_limit_buckets_pkey DO NOTHING;
        IF FOUND THEN
            RETURN jsonb_build_object('allowed', true, 'limit', max_requests, 'remaining', max_requests - 1,
                                      'reset', ceil(extract(epoch FROM v_now + v_window))::bigint,
                                      'retry_after', 0, 'audited', false);
        END IF;
        SELECT b.hits, b.last_audited_at, b.violations INTO v_hits, v_last_audited, v_violations
          FROM public.rate_limit_buckets b WHERE b.bucket = bucket FOR UPDATE;
    END IF;
    v_now := clock_timestamp();  -- after the lock: the order of decisions is the order of time
    v_n := coalesce(cardinality(v_hits), 0);
    WHILE v_first <= v_n AND v_hits[v_first] <= v_now - v_window LOOP
        v_first := v_first + 1;
    END LOOP;
    v_hits := coalesce(v_hits[v_first:v_n], '{}');
    v_count := cardinality(v_hits);
    v_allowed := v_count < max_requests;

    IF v_allowed THEN
        v_hits := v_hits || v_now;
        v_count := v_count + 1;
        UPDATE public.rate_limit_buckets b
           SET hits = v_hits, window_seconds = func_rate_limit_hit.window_seconds, updated_at = v_now
         WHERE b.bucket = bucket;
        RETURN jsonb_build_object('allowed', true, 'limit', max_requests,
                                  'remaining', greatest(max_requests - v_count, 0),
                                  'reset', ceil(extract(epoch FROM v_hits[1] + v_window))::bigint,
                                  'retry_after', 0, 'audited', false);
    END IF;

    -- Rejected: not stored. A slot frees when enough of the oldest hits leave the window
    -- (one, unless the limit was lowered under a fuller bucket).
    v_frees := v_hits[v_count - max_requests + 1] + v_window;
    IF audit IS NOT NULL AND jsonb_typeof(audit) = 'object' THEN
        IF v_last_audited IS NOT NULL AND v_last_audited > v_now - v_window THEN
            -- Audited already in this window: only counted (no chain lock, no row). The
            -- count is the only logged write of this transaction: a crash may lose the
            -- last few counts, never an audit row, so its commit does not wait for the WAL
            -- flush (transaction-local, pooler-safe); a flood of refusals stays cheap.
            PERFORM set_config('synchronous_commit', 'off', true);
            UPDATE public.audit_event_counts c SET n = c.n + 1 WHERE c.event_type = 'rate_limited';
        ELSE
            BEGIN
                v_appended := public.func_audit_append(
                    event_type => 'rate_limited', action => 'throttle', actor => audit ->> 'actor',
                    actor_ip => audit ->> 'actor_ip', target_type => 'route',
                    target_id => audit ->> 'target_id',
                    details => CASE WHEN jsonb_typeof(audit -> 'details') = 'object'
                                    THEN audit -> 'details' ELSE '{}'::jsonb END
                               || jsonb_build_object('limit', max_requests, 'period', window_seconds,
                                                     'violations', v_violations + 1),
                    correlation_id => audit ->> 'correlation_id', instance_id => audit ->> 'instance_id',
                    throttle_key => bucket, throttle_seconds => ceil(window_seconds)::integer);
                v_audited := NOT coalesce((v_appended ->> 'throttled')::boolean, false);
            EXCEPTION WHEN invalid_parameter_value OR string_data_right_truncation THEN
                -- A bad audit field must not turn a decision into an error.
                v_audit_error := SQLERRM;
            END;
        END IF;
    END IF;
    UPDATE public.rate_limit_buckets b
       SET hits = v_hits, violations = b.violations + 1, updated_at = v_now,
           last_audited_at = CASE WHEN v_appended IS NOT NULL THEN v_now ELSE b.last_audited_at END
     WHERE b.bucket = bucket;
    RETURN jsonb_build_object('allowed', false, 'limit', max_requests, 'remaining', 0,
                              'reset', ceil(extract(epoch FROM v_frees))::bigint,
                              'retry_after', greatest(1, ceil(extract(epoch FROM v_frees - v_now)))::bigint,
                              'audited', v_audited)
           || CASE WHEN v_audit_error IS NULL THEN '{}'::jsonb
                   ELSE jsonb_build_object('audit_error', v_audit_error) END;
END;
$$;
COMMENT ON FUNCTION public.func_rate_limit_hit(text, integer, double precision, jsonb) IS
    'One rate-limit decision on bucket (<rule>|<client key>): an exact sliding window of window_seconds (0.1-86400) allowing max_requests (1-10000), on the database clock, serialised by the bucket''s row lock. Only accepted hits are stored. When rejected and audit ({actor_ip, target_id, details, correlation_id, instance_id}) is given, the first refusal of a window appends a rate_limited audit event; later ones of that window are only counted in audit_event_counts. Returns {allowed, limit, remaining, reset (epoch s when a slot frees), retry_after (s), audited}.';

CREATE OR REPLACE FUNCTION public.func_rate_limit_usage(bucket text, max_requests integer, window_seconds double precision)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_now timestamptz := clock_timestamp();
    v_window interval;
    v_live timestamptz[];
BEGIN
    PERFORM hub_internal.func_rate_limit_check_args(bucket, max_requests, window_seconds);
    v_window := make_interval(secs => window_seconds);
    SELECT coalesce(array_agg(h ORDER BY h), '{}') INTO v_live
      FROM public.rate_limit_buckets b, unnest(b.hits) AS h
     WHERE b.bucket = bucket AND h > v_now - v_window;
    RETURN jsonb_build_object(
        'count', cardinality(v_live), 'limit', max_requests,
        'remaining', greatest(max_requests - cardinality(v_live), 0),
        'reset_in_seconds', CASE WHEN cardinality(v_live) = 0 THEN 0
                                 ELSE round(greatest(extract(epoch FROM v_live[1] + v_window - v_now), 0), 3) END);
END;
$$;
COMMENT ON FUNCTION public.func_rate_limit_usage(text, integer, double precision) IS
    'Reads a bucket without counting a hit (the seed''s get_usage): {count (hits inside the last window_seconds), limit, remaining, reset_in_seconds (until the oldest counted hit leaves the window; 0 when empty)}.';

CREATE OR REPLACE FUNCTION public.func_rate_limit_prune()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    -- updated_at is the newest hit (or rejection): older than the window, nothing counts.
    DELETE FROM public.rate_limit_buckets b
     WHERE b.updated_at < clock_timestamp() - make_interval(secs => b.window_seconds);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN jsonb_build_object('deleted', v_deleted);
END;
$$;
COMMENT ON FUNCTION public.func_rate_limit_prune() IS
    'Deletes rate-limit buckets with no hit inside their window (the daemon''s rate_limit_prune duty, every 5 minutes). Returns {deleted}.';

CREATE OR REPLACE FUNCTION public.func_rate_limit_tracked()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object('tracked_clients', count(*))
      FROM public.rate_limit_buckets b
     WHERE b.updated_at > clock_timestamp() - make_interval(secs => b.window_seconds)
$$;
COMMENT ON FUNCTION public.func_rate_limit_tracked() IS
    'How many rate-limit buckets had a hit inside their window (orchestrator_rate_limit_tracked_clients). Returns {tracked_clients}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_rate_limit_check_args(text, integer, double precision)',
        'public.func_rate_limit_hit(text, integer, double precision, jsonb)',
        'public.func_rate_limit_usage(text, integer, double precision)',
        'public.func_rate_limit_prune()',
        'public.func_rate_limit_tracked()'
    ]::regprocedure[]);
