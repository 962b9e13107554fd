-- sql/functions/daemon/leases.sql
-- Duty leases of the orchestrator daemon (table in sql/migrations/0006): two daemons
-- against one database never run the same duty at the same time. A lease is a row with
-- a holder and an expiry, taken and renewed in one statement, so it works through
-- PgBouncer/Supavisor in transaction mode, where session advisory locks would be held by
-- whichever client next gets the server connection. A crashed holder's lease expires.

-- Takes the lease of a duty, or renews it when the caller already holds it. Succeeds
-- when nobody holds it, the caller holds it, or the holder's lease has expired. One
-- INSERT ... ON CONFLICT DO UPDATE ... WHERE: concurrent callers queue on the row lock
-- and the second re-checks the condition against the first one's committed row, so
-- exactly one of them gets an expired lease.
CREATE OR REPLACE FUNCTION public.func_try_duty_lease(duty text, holder text, ttl_seconds integer DEFAULT 30)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_duty text := btrim(func_try_duty_lease.duty);
    v_holder text := btrim(func_try_duty_lease.holder);
    v_ttl integer := func_try_duty_lease.ttl_seconds;
    v_now timestamptz := clock_timestamp();
    v_row public.daemon_leases%ROWTYPE;
BEGIN
    IF v_duty IS NULL OR v_duty = '' OR v_holder IS NULL OR v_holder = '' THEN
        RAISE EXCEPTION 'duty and holder must be non-empty text, got duty=% holder=%',
            coalesce(quote_literal(left(func_try_duty_lease.duty, 100)), 'NULL'),
            coalesce(quote_literal(left(func_try_duty_lease.holder, 100)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(v_duty) > 200 OR length(v_holder) > 255 THEN
        RAISE EXCEPTION 'duty takes at most 200 characters and holder at most 255, got % and %',
            length(v_duty), length(v_holder) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_ttl IS NULL OR v_ttl < 1 OR v_ttl > 86400 THEN
        RAISE EXCEPTION 'ttl_seconds must be from 1 to 86400, got %', coalesce(v_ttl::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO public.daemon_leases AS l (duty, holder, acquired_at, expires_at)
    VALUES (v_duty, v_holder, v_now, v_now + make_interval(secs => v_ttl))
    ON CONFLICT (duty) DO UPDATE SET
        holder = EXCLUDED.holder,
        acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > v_now
                           THEN l.acquired_at ELSE EXCLUDED.acquired_at END,
        expires_at = EXCLUDED.expires_at
    WHERE l.holder = EXCLUDED.holder OR l.expires_at <= v_now
    RETURNING l.* INTO v_row;

    IF FOUND THEN
        RETURN jsonb_build_object('acquired', true, 'duty', v_row.duty, 'holder', v_row.holder,
                                  'acquired_at', v_row.acquired_at, 'expires_at', v_row.expires_at);
    END IF;
    SELECT * INTO v_row FROM public.daemon_leases l WHERE l.duty = v_duty;
    RETURN jsonb_build_object('acquired', false, 'duty', v_duty, 'holder', v_row.holder,
                              'acquired_at', v_row.acquired_at, 'expires_at', v_row.expires_at);
END;
$$;
COMMENT ON FUNCTION public.func_try_duty_lease(text, text, integer) IS
    'Takes or renews the lease of a daemon duty (at most 200 characters) for holder (at most 255) for ttl_seconds (1-86400): succeeds when the duty is free, already held by holder, or its lease expired. Returns {acquired, duty, holder, acquired_at, expires_at} (the current holder when not acquired). One statement, safe under concurrency and through transaction poolers.';

-- Gives a lease back (a daemon stopping), so another daemon takes the duty at once
-- instead of after the expiry. Only the holder can release it.
CREATE OR REPLACE FUNCTION public.func_release_duty_lease(duty text, holder text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_released integer;
BEGIN
    DELETE FROM public.daemon_leases l
     WHERE l.duty = btrim(func_release_duty_lease.duty)
       AND l.holder = btrim(func_release_duty_lease.holder);
    GET DIAGNOSTICS v_released = ROW_COUNT;
    RETURN jsonb_build_object('released', v_released > 0);
END;
$$;
COMMENT ON FUNCTION public.func_release_duty_lease(text, text) IS
    'Releases the lease of a daemon duty if holder holds it. Returns {released}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_try_duty_lease(text, text, integer)',
        'public.func_release_duty_lease(text, text)'
    ]::regprocedure[]);
