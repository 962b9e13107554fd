-- sql/functions/ops/audit.sql
-- The audit trail (table in sql/migrations/0030): append, query, verify, prune, and the
-- trigger that keeps it append-only. One chain across every instance: func_audit_append
-- takes a transaction-scoped advisory lock (pooler-safe), reads the newest entry_hash and
-- takes the next id under it, so id order is chain order. Tamper evidence holds against
-- anyone who cannot rewrite the whole tail of the chain; the database owner can, so ship
-- the rows elsewhere if that matters (README, "Audit log").

-- The hash of one entry: sha256 of the previous entry's hash and every field of the row.
-- Times are rendered in UTC with microseconds, so the text (and the hash) does not depend
-- on the session's TimeZone; jsonb's text form is canonical (sorted keys).
CREATE OR REPLACE FUNCTION hub_internal.func_audit_entry_hash(
    p_prev bytea, p_id bigint, p_occurred_at timestamptz, p_event_type text, p_actor text,
    p_actor_ip inet, p_target_type text, p_target_id text, p_action text, p_details jsonb,
    p_correlation_id text, p_instance_id text
) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sha256(p_prev || convert_to(jsonb_build_array(
        p_id, to_char(p_occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        p_event_type, p_actor, p_actor_ip::text, p_target_type, p_target_id, p_action,
        p_details, p_correlation_id, p_instance_id)::text, 'UTF8'))
$$;
COMMENT ON FUNCTION hub_internal.func_audit_entry_hash(bytea, bigint, timestamptz, text, text, inet, text, text, text, jsonb, text, text) IS
    'Internal: sha256(prev_hash || the entry''s fields as a canonical JSON array), the chain link of audit_log; used by func_audit_append and func_audit_verify alike.';

CREATE OR REPLACE FUNCTION hub_internal.func_audit_inet(p_address text)
RETURNS inet
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN p_address::inet;
EXCEPTION WHEN invalid_text_representation THEN
    RAISE EXCEPTION 'actor_ip must be an IPv4 or IPv6 address, got %', quote_literal(left(p_address, 80))
        USING ERRCODE = 'invalid_parameter_value';
END;
$$;
COMMENT ON FUNCTION hub_internal.func_audit_inet(text) IS
    'Internal: an actor_ip as inet (NULL stays NULL), or SQLSTATE 22023 naming what is accepted.';

CREATE OR REPLACE FUNCTION public.func_audit_append(
    event_type text, action text, actor text DEFAULT NULL, actor_ip text DEFAULT NULL,
    target_type text DEFAULT NULL, target_id text DEFAULT NULL, details jsonb DEFAULT '{}'::jsonb,
    correlation_id text DEFAULT NULL, instance_id text DEFAULT NULL,
    throttle_key text DEFAULT NULL, throttle_seconds integer DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_type text := btrim(event_type);
    v_action text := btrim(action);
    v_details jsonb := coalesce(nullif(details, 'null'::jsonb), '{}'::jsonb);
    v_ip inet;
    v_throttle public.audit_throttle%ROWTYPE;
    v_now timestamptz;
    v_prev bytea;
    v_id bigint;
    v_hash bytea;
BEGIN
    IF v_type IS NULL OR v_type !~ '^[a-z][a-z0-9_]{1,63}$' THEN
        RAISE EXCEPTION 'event_type must be 2-64 characters of a-z, 0-9 and _ starting with a letter, got %',
            coalesce(quote_literal(left(event_type, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_action IS NULL OR v_action = '' OR length(v_action) > 200 THEN
        RAISE EXCEPTION 'action must be non-empty text of at most 200 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(v_details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object, got a JSON %', jsonb_typeof(v_details)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(v_details::text) > 65536 THEN
        RAISE EXCEPTION 'details must be at most 64 KiB of JSON, got % bytes', octet_length(v_details::text)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(actor) > 256 OR length(target_type) > 64 OR length(target_id) > 1024
       OR length(correlation_id) > 128 OR length(instance_id) > 255 OR length(throttle_key) > 1024 THEN
        RAISE EXCEPTION 'audit fields too long; accepted: actor <= 256, target_type <= 64, target_id <= 1024, correlation_id <= 128, instance_id <= 255, throttle_key <= 1024 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF throttle_key IS NOT NULL AND (throttle_seconds IS NULL OR throttle_seconds < 1 OR throttle_seconds > 86400) THEN
        RAISE EXCEPTION 'throttle_seconds must be from 1 to 86400 with a throttle_key, got %',
            coalesce(throttle_seconds::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_ip := hub_internal.func_audit_inet(actor_ip);
    -- Under REPEATABLE READ the newest row read below would be the snapshot's, not the
    -- latest committed one, and two appenders would fork the chain.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'func_audit_append must run in a READ COMMITTED transaction, not %',
            current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
    END IF;

    -- Every append, throttled or not, takes the chain's lock first: one lock order, so two
    -- transactions that append several events cannot deadlock on the counters.
    PERFORM pg_advisory_xact_lock(x'6875625f61756469'::bigint);  -- 'hub_audi'
    INSERT INTO public.audit_event_counts AS c (event_type, n) VALUES (v_type, 1)
        ON CONFLICT ON CONSTRAINT audit_event_counts_pkey DO UPDATE SET n = c.n + 1;
    v_now := clock_timestamp();

    IF throttle_key IS NOT NULL THEN
        SELECT * INTO v_throttle FROM public.audit_throttle t
         WHERE t.event_type = v_type AND t.throttle_key = func_audit_append.throttle_key;
        IF FOUND AND v_throttle.last_written_at > v_now - make_interval(secs => throttle_seconds) THEN
            UPDATE public.audit_throttle t SET suppressed = t.suppressed + 1
             WHERE t.event_type = v_type AND t.throttle_key = func_audit_append.throttle_key;
            RETURN jsonb_build_object('id', NULL, 'entry_hash', NULL, 'throttled', true);
        END IF;
        IF FOUND THEN
            IF v_throttle.suppressed > 0 THEN
                v_details := v_details || jsonb_build_object('suppressed_since_last', v_throttle.suppressed);
            END IF;
            UPDATE public.audit_throttle t SET last_written_at = v_now, suppressed = 0
             WHERE t.event_type = v_type AND t.throttle_key = func_audit_append.throttle_key;
        ELSE
            INSERT INTO public.audit_throttle (event_type, throttle_key, last_written_at)
            VALUES (v_type, throttle_key, v_now);
        END IF;
    END IF;

    SELECT a.entry_hash INTO v_prev FROM public.audit_log a ORDER BY a.id DESC LIMIT 1;
    v_prev := coalesce(v_prev, decode(repeat('00', 32), 'hex'));  -- genesis
    v_id := nextval('public.audit_log_id_seq');
    v_hash := hub_internal.func_audit_entry_hash(v_prev, v_id, v_now, v_type, actor, v_ip, target_type,
                                                 target_id, v_action, v_details, correlation_id, instance_id);
    INSERT INTO public.audit_log (id, occurred_at, event_type, actor, actor_ip, target_type, target_id, action,
                                  details, correlation_id, instance_id, prev_hash, entry_hash)
    OVERRIDING SYSTEM VALUE
    VALUES (v_id, v_now, v_type, actor, v_ip, target_type, target_id, v_action, v_details, correlation_id,
            instance_id, v_prev, v_hash);
    RETURN jsonb_build_object('id', v_id, 'entry_hash', encode(v_hash, 'hex'), 'throttled', false,
                              'occurred_at', v_now);
END;
$$;
COMMENT ON FUNCTION public.func_audit_append(text, text, text, text, text, text, jsonb, text, text, text, integer) IS
    'Appends one event to the audit chain (one chain across all instances: advisory lock, newest hash, next id). event_type ^[a-z][a-z0-9_]{1,63}$, action required, details a JSON object <= 64 KiB, actor_ip an address. With throttle_key, at most one row per (event_type, throttle_key) per throttle_seconds; the others only count (audit_event_counts) and the next row says how many were suppressed. Returns {id, entry_hash, throttled, occurred_at}.';

CREATE OR REPLACE FUNCTION public.func_audit_query(
    event_type text DEFAULT NULL, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    actor_ip text DEFAULT NULL, target_type text DEFAULT NULL, target_id text DEFAULT NULL,
    after_id bigint DEFAULT NULL, row_limit integer DEFAULT 100
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_ip inet;
    v_sql text := 'SELECT a.* FROM public.audit_log a WHERE true';
    v_rows jsonb;
    v_count integer;
BEGIN
    IF row_limit IS NULL OR row_limit < 1 OR row_limit > 1000 THEN
        RAISE EXCEPTION 'limit must be from 1 to 1000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_ip := hub_internal.func_audit_inet(actor_ip);
    -- Only the filters given, values as parameters: the planner picks the index of the
    -- filter (a generic "$1 IS NULL OR ..." plan could not).
    IF event_type IS NOT NULL THEN v_sql := v_sql || ' AND a.event_type = $1'; END IF;
    IF since IS NOT NULL THEN v_sql := v_sql || ' AND a.occurred_at >= $2'; END IF;
    IF until IS NOT NULL THEN v_sql := v_sql || ' AND a.occurred_at < $3'; END IF;
    IF v_ip IS NOT NULL THEN v_sql := v_sql || ' AND a.actor_ip = $4'; END IF;
    IF target_type IS NOT NULL THEN v_sql := v_sql || ' AND a.target_type = $5'; END IF;
    IF target_id IS NOT NULL THEN v_sql := v_sql || ' AND a.target_id = $6'; END IF;
    IF after_id IS NOT NULL THEN v_sql := v_sql || ' AND a.id < $7'; END IF;
    v_sql := 'SELECT coalesce(jsonb_agg(jsonb_build_object(''id'', p.id, ''occurred_at'', p.occurred_at, '
          || '''event_type'', p.event_type, ''actor'', p.actor, ''actor_ip'', host(p.actor_ip), '
          || '''target_type'', p.target_type, ''target_id'', p.target_id, ''action'', p.action, '
          || '''details'', p.details, ''correlation_id'', p.correlation_id, ''instance_id'', p.instance_id, '
          || '''entry_hash'', encode(p.entry_hash, ''hex'')) ORDER BY p.id DESC), ''[]''::jsonb), count(*) '
          || 'FROM (' || v_sql || ' ORDER BY a.id DESC LIMIT $8) p';
    EXECUTE v_sql INTO v_rows, v_count
        USING btrim(event_type), since, until, v_ip, target_type, target_id, after_id, row_limit + 1;
    IF v_count > row_limit THEN
        v_rows := v_rows - row_limit;  -- the extra row only said there is more
        RETURN jsonb_build_object('entries', v_rows, 'more', true,
                                  'next_after', (v_rows -> (row_limit - 1) ->> 'id')::bigint);
    END IF;
    RETURN jsonb_build_object('entries', v_rows, 'more', false, 'next_after', NULL);
END;
$$;
COMMENT ON FUNCTION public.func_audit_query(text, timestamptz, timestamptz, text, text, text, bigint, integer) IS
    'A keyset page of audit entries, newest first, filtered by event_type, time window [since, until), actor_ip, target_type, target_id; after_id continues below that id. row_limit 1-1000. Returns {entries, more, next_after}.';

CREATE OR REPLACE FUNCTION public.func_audit_verify(from_id bigint DEFAULT NULL, to_id bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_start bigint;
    v_checked bigint;
    v_first bigint;
    v_last bigint;
    v_bad_id bigint;
    v_reason text;
BEGIN
    -- The window starts one row before from_id when there is one: its hash anchors the
    -- first checked row. Otherwise the first row's prev_hash is the anchor (genesis, or
    -- the last row retention removed).
    SELECT max(a.id) INTO v_start FROM public.audit_log a WHERE from_id IS NOT NULL AND a.id < from_id;
    WITH w AS (
        SELECT a.*, lag(a.entry_hash) OVER (ORDER BY a.id) AS expected_prev
          FROM public.audit_log a
         WHERE a.id >= coalesce(v_start, from_id, 0) AND (to_id IS NULL OR a.id <= to_id)
    ), checked AS (
        SELECT w.* FROM w WHERE from_id IS NULL OR w.id >= from_id
    ), bad AS (
        SELECT c.id,
               CASE WHEN c.expected_prev IS NOT NULL AND c.prev_hash <> c.expected_prev
                    THEN 'prev_hash does not match the entry_hash of the entry before it (an entry was removed, inserted or changed)'
                    ELSE 'entry_hash does not match the entry''s content (the entry was changed)' END AS reason
          FROM checked c
         WHERE (c.expected_prev IS NOT NULL AND c.prev_hash <> c.expected_prev)
            OR hub_internal.func_audit_entry_hash(c.prev_hash, c.id, c.occurred_at, c.event_type, c.actor, c.actor_ip,
                   c.target_type, c.target_id, c.action, c.details, c.correlation_id, c.instance_id) <> c.entry_hash
         ORDER BY c.id LIMIT 1
    )
    SELECT (SELECT count(*) FROM checked), (SELECT min(id) FROM checked), (SELECT max(id) FROM checked),
           (SELECT b.id FROM bad b), (SELECT b.reason FROM bad b)
      INTO v_checked, v_first, v_last, v_bad_id, v_reason;
    IF v_bad_id IS NOT NULL THEN
        RETURN jsonb_build_object('valid', false, 'checked', v_checked, 'first_id', v_first, 'last_id', v_last,
                                  'broken_at', v_bad_id, 'reason', v_reason);
    END IF;
    RETURN jsonb_build_object('valid', true, 'checked', v_checked, 'first_id', v_first, 'last_id', v_last,
                              'broken_at', NULL, 'reason', NULL);
END;
$$;
COMMENT ON FUNCTION public.func_audit_verify(bigint, bigint) IS
    'Recomputes the audit chain over ids [from_id, to_id] (default all): every entry_hash from its content and prev_hash, every prev_hash against the entry before. Returns {valid, checked, first_id, last_id, broken_at, reason} naming the first bad id.';

-- The append-only guard: UPDATE, DELETE and TRUNCATE are refused, for every role, except
-- the deletes func_audit_prune makes with its transaction-local switch on.
CREATE OR REPLACE FUNCTION hub_internal.func_audit_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('orchestrator.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is refused (retention removes old entries through func_audit_prune)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
COMMENT ON FUNCTION hub_internal.func_audit_append_only() IS
    'Internal trigger: refuses UPDATE, DELETE and TRUNCATE on audit_log except func_audit_prune''s deletes.';

CREATE OR REPLACE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON public.audit_log
    FOR EACH ROW EXECUTE FUNCTION hub_internal.func_audit_append_only();
CREATE OR REPLACE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON public.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION hub_internal.func_audit_append_only();

-- Retention: the oldest entries (a prefix of the chain, so what stays still verifies;
-- the newest entry is always kept as the next append's anchor). SECURITY DEFINER because
-- service_role may not delete audit rows itself.
CREATE OR REPLACE FUNCTION public.func_audit_prune(retention_days integer)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_keep_from bigint;
    v_deleted bigint;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 OR retention_days > 36500 THEN
        RAISE EXCEPTION 'retention_days must be from 1 to 36500, got %', coalesce(retention_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(min(a.id), (SELECT max(b.id) FROM public.audit_log b)) INTO v_keep_from
      FROM public.audit_log a WHERE a.occurred_at >= clock_timestamp() - make_interval(days => retention_days);
    PERFORM set_config('orchestrator.audit_prune', 'on', true);
    DELETE FROM public.audit_log a WHERE a.id < v_keep_from;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    PERFORM set_config('orchestrator.audit_prune', 'off', true);
    DELETE FROM public.audit_throttle t WHERE t.last_written_at < clock_timestamp() - interval '1 day';
    RETURN jsonb_build_object('deleted', v_deleted, 'kept_from_id', v_keep_from);
END;
$$;
COMMENT ON FUNCTION public.func_audit_prune(integer) IS
    'Audit retention: deletes the entries older than retention_days (1-36500), oldest first, always keeping the newest; forgets idle throttle keys. Returns {deleted, kept_from_id}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_audit_entry_hash(bytea, bigint, timestamptz, text, text, inet, text, text, text, jsonb, text, text)',
        'hub_internal.func_audit_inet(text)',
        'public.func_audit_append(text, text, text, text, text, text, jsonb, text, text, text, integer)',
        'public.func_audit_query(text, timestamptz, timestamptz, text, text, text, bigint, integer)',
        'public.func_audit_verify(bigint, bigint)',
        'hub_internal.func_audit_append_only()',
        'public.func_audit_prune(integer)'
    ]::regprocedure[]);
