-- sql/functions/providers/circuit.sql
-- The circuit breaker of each external provider (table in sql/migrations/0086), shared
-- by every daemon: closed -> open after open_after consecutive failed calls; open skips
-- the provider (no dispatch, so no job attempt is spent); after the cool-down one caller
-- is let through as a half-open probe; its success closes the circuit, its failure opens
-- it again. Row locks make the probe single across daemons.

CREATE OR REPLACE FUNCTION public.func_provider_circuit_allow(provider text, half_open_after_seconds integer DEFAULT 30)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    h public.provider_health%ROWTYPE;
    v_now timestamptz;
BEGIN
    IF provider IS NULL OR provider = '' OR length(provider) > 63 THEN
        RAISE EXCEPTION 'provider must be a provider name of at most 63 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF half_open_after_seconds IS NULL OR half_open_after_seconds < 1 OR half_open_after_seconds > 86400 THEN
        RAISE EXCEPTION 'half_open_after_seconds must be from 1 to 86400, got %', coalesce(half_open_after_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Closed (or never seen) is the common case: answered without a lock or a write.
    SELECT * INTO h FROM public.provider_health ph WHERE ph.provider = provider;
    IF NOT FOUND OR h.state = 'closed' THEN
        RETURN jsonb_build_object('allow', true, 'state', 'closed', 'probe', false);
    END IF;
    SELECT * INTO h FROM public.provider_health ph WHERE ph.provider = provider FOR UPDATE;
    v_now := clock_timestamp();
    IF h.state = 'closed' THEN
        RETURN jsonb_build_object('allow', true, 'state', 'closed', 'probe', false);
    END IF;
    IF coalesce(h.probe_started_at, h.opened_at, '-infinity') > v_now - make_interval(secs => half_open_after_seconds) THEN
        RETURN jsonb_build_object('allow', false, 'state', h.state, 'probe', false,
                                  'retry_in_seconds', ceil(extract(epoch FROM coalesce(h.probe_started_at, h.opened_at)
                                      + make_interval(secs => half_open_after_seconds) - v_now)));
    END IF;
    UPDATE public.provider_health ph SET state = 'half_open', probe_started_at = v_now, updated_at = v_now
     WHERE ph.provider = provider;
    RETURN jsonb_build_object('allow', true, 'state', 'half_open', 'probe', true);
END;
$$;
COMMENT ON FUNCTION public.func_provider_circuit_allow(text, integer) IS
    'Whether a call to the provider may go out now: closed -> yes; open or half_open -> no, until half_open_after_seconds after it opened (or after the last probe started), when exactly one caller gets {allow: true, probe: true} and the state becomes half_open. Returns {allow, state, probe, retry_in_seconds?}.';

CREATE OR REPLACE FUNCTION public.func_record_provider_call(
    provider text, ok boolean, error text DEFAULT NULL, open_after integer DEFAULT 5
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    h public.provider_health%ROWTYPE;
    v_now timestamptz := clock_timestamp();
BEGIN
    IF provider IS NULL OR provider = '' OR length(provider) > 63 THEN
        RAISE EXCEPTION 'provider must be a provider name of at most 63 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ok IS NULL THEN
        RAISE EXCEPTION 'ok must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF open_after IS NULL OR open_after < 1 OR open_after > 1000 THEN
        RAISE EXCEPTION 'open_after must be from 1 to 1000, got %', coalesce(open_after::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.provider_health AS ph (provider) VALUES (provider)
    ON CONFLICT ON CONSTRAINT provider_health_pkey DO NOTHING;
    SELECT * INTO h FROM public.provider_health ph WHERE ph.provider = provider FOR UPDATE;
    IF ok THEN
        UPDATE public.provider_health ph
           SET state = 'closed', consecutive_failures = 0, opened_at = NULL, probe_started_at = NULL,
               ok_total = ph.ok_total + 1, updated_at = v_now
         WHERE ph.provider = provider
        RETURNING * INTO h;
    ELSE
        UPDATE public.provider_health ph
           SET consecutive_failures = ph.consecutive_failures + 1,
               failed_total = ph.failed_total + 1,
               last_error = left(error, 1000),
               -- a failed probe, or the open_after-th failure in a row, opens the circuit
               state = CASE WHEN ph.state = 'half_open' OR ph.consecutive_failures + 1 >= open_after THEN 'open' ELSE ph.state END,
               opened_at = CASE WHEN ph.state = 'half_open' OR (ph.state = 'closed' AND ph.consecutive_failures + 1 >= open_after)
                                THEN v_now ELSE ph.opened_at END,
               probe_started_at = NULL,
               updated_at = v_now
         WHERE ph.provider = provider
        RETURNING * INTO h;
    END IF;
    RETURN jsonb_build_object('state', h.state, 'consecutive_failures', h.consecutive_failures,
                              'opened_at', h.opened_at);
END;
$$;
COMMENT ON FUNCTION public.func_record_provider_call(text, boolean, text, integer) IS
    'Records the outcome of a call to a provider: success closes the circuit; a failure counts, and the open_after-th consecutive one (or a failed half-open probe) opens it. error is kept (first 1000 characters) as last_error. Returns {state, consecutive_failures, opened_at}.';

CREATE OR REPLACE FUNCTION public.func_provider_health()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(h.provider, jsonb_build_object(
               'state', h.state, 'consecutive_failures', h.consecutive_failures, 'opened_at', h.opened_at,
               'ok_total', h.ok_total, 'failed_total', h.failed_total, 'last_error', h.last_error,
               'updated_at', h.updated_at)), '{}'::jsonb)
      FROM public.provider_health h
$$;
COMMENT ON FUNCTION public.func_provider_health() IS
    'Every provider''s circuit breaker: {provider: {state, consecutive_failures, opened_at, ok_total, failed_total, last_error, updated_at}} (metrics, health, the providers API).';

CREATE OR REPLACE FUNCTION public.func_provider_settings()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(substr(s.scope, 10), jsonb_build_object(
               'settings', s.settings, 'version', s.version, 'updated_at', s.updated_at,
               'updated_by', s.updated_by)), '{}'::jsonb)
      FROM public.hub_settings s
     WHERE s.scope LIKE 'provider:%' AND s.version > 0
$$;
COMMENT ON FUNCTION public.func_provider_settings() IS
    'The runtime overrides of every provider in one call: {name: {settings, version, updated_at, updated_by}} from hub_settings scopes provider:<name> (each instance and daemon polls it every 2 s and rebuilds a provider''s client when its version changes).';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_provider_circuit_allow(text, integer)',
        'public.func_record_provider_call(text, boolean, text, integer)',
        'public.func_provider_health()',
        'public.func_provider_settings()'
    ]::regprocedure[]);
