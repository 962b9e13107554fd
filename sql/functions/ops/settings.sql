-- sql/functions/ops/settings.sql
-- Runtime settings shared by every instance (table in sql/migrations/0033): read a few
-- scopes in one call, change one scope with a merge patch under optimistic concurrency,
-- the change audited (config_changed, secret values redacted) in the same transaction.
-- Validation of the values is the caller's (pydantic models shared with the YAML).

CREATE OR REPLACE FUNCTION public.func_get_settings(scopes jsonb)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(s.scope, jsonb_build_object(
               'settings', s.settings, 'version', s.version, 'updated_at', s.updated_at,
               'updated_by', s.updated_by)), '{}'::jsonb)
      FROM public.hub_settings s
     WHERE s.scope IN (SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(scopes) = 'array' THEN scopes ELSE '[]'::jsonb END))
       AND s.version > 0
$$;
COMMENT ON FUNCTION public.func_get_settings(jsonb) IS
    'The stored settings of the given scopes (a JSON array of names): {scope: {settings, version, updated_at, updated_by}}; a scope never written is absent.';

CREATE OR REPLACE FUNCTION hub_internal.func_settings_redacted(p_settings jsonb, p_secret_keys text[])
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(k, CASE WHEN k = ANY (p_secret_keys) AND v <> 'null'::jsonb
                                             THEN to_jsonb('<redacted>'::text) ELSE v END), '{}'::jsonb)
      FROM jsonb_each(coalesce(p_settings, '{}'::jsonb)) AS e(k, v)
$$;
COMMENT ON FUNCTION hub_internal.func_settings_redacted(jsonb, text[]) IS
    'Internal: settings with the values of the secret keys replaced by "<redacted>" (for audit rows).';

CREATE OR REPLACE FUNCTION public.func_put_settings(
    scope text, patch jsonb, expected_version bigint DEFAULT NULL, updated_by text DEFAULT NULL,
    secret_keys jsonb DEFAULT '[]'::jsonb, actor_ip text DEFAULT NULL, correlation_id text DEFAULT NULL,
    instance_id text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_row public.hub_settings%ROWTYPE;
    v_old jsonb;
    v_new jsonb;
    v_version bigint;
    v_secret text[] := ARRAY(SELECT jsonb_array_elements_text(
                          CASE WHEN jsonb_typeof(secret_keys) = 'array' THEN secret_keys ELSE '[]'::jsonb END));
BEGIN
    IF scope IS NULL OR scope !~ '^(metrics|provider:[a-z0-9][a-z0-9_-]{0,62})$' THEN
        RAISE EXCEPTION 'unknown settings scope %; accepted: metrics, provider:<name>',
            coalesce(quote_literal(left(scope, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN
        RAISE EXCEPTION 'patch must be a JSON object, got %', coalesce('a JSON ' || jsonb_typeof(patch), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Lock the scope's row (or create it) so concurrent writers queue and each sees the
    -- version the previous one committed.
    INSERT INTO public.hub_settings AS h (scope, settings, version, updated_at, updated_by)
    VALUES (scope, '{}'::jsonb, 0, clock_timestamp(), updated_by)
    ON CONFLICT ON CONSTRAINT hub_settings_pkey DO NOTHING;
    SELECT * INTO v_row FROM public.hub_settings h WHERE h.scope = func_put_settings.scope FOR UPDATE;
    -- A scope never written is version 0 (func_get_settings does not list it); the first
    -- write makes it 1.
    IF expected_version IS NOT NULL AND expected_version <> v_row.version THEN
        RETURN jsonb_build_object('conflict', true, 'scope', scope, 'version', v_row.version,
                                  'settings', v_row.settings);
    END IF;
    v_old := v_row.settings;
    -- Merge: keys of the patch replace the stored ones; a key set to null is removed.
    v_new := (v_old || patch) - ARRAY(SELECT k FROM jsonb_each(patch) AS p(k, v) WHERE v = 'null'::jsonb);
    IF v_new = v_old AND v_row.version > 0 THEN
        RETURN jsonb_build_object('conflict', false, 'changed', false, 'scope', scope,
                                  'version', v_row.version, 'settings', v_old);
    END IF;
    v_version := v_row.version + 1;
    UPDATE public.hub_settings h
       SET settings = v_new, version = v_version, updated_at = clock_timestamp(), updated_by = func_put_settings.updated_by
     WHERE h.scope = func_put_settings.scope;
    PERFORM public.func_audit_append(
        event_type => 'config_changed', action => 'update', actor => updated_by, actor_ip => actor_ip,
        target_type => 'settings', target_id => scope,
        details => jsonb_build_object('before', hub_internal.func_settings_redacted(v_old, v_secret),
                                      'after', hub_internal.func_settings_redacted(v_new, v_secret),
                                      'version', v_version),
        correlation_id => correlation_id, instance_id => instance_id);
    RETURN jsonb_build_object('conflict', false, 'changed', true, 'scope', scope, 'version', v_version,
                              'settings', v_new);
END;
$$;
COMMENT ON FUNCTION public.func_put_settings(text, jsonb, bigint, text, jsonb, text, text, text) IS
    'Merges patch into the settings of scope (metrics, provider:<name>; a null value removes a key). With expected_version, a stale version changes nothing and answers {conflict: true, version, settings}. A change bumps the version and appends a config_changed audit event (values of secret_keys redacted) in the same transaction. Returns {conflict, changed, scope, version, settings}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'public.func_get_settings(jsonb)',
        'hub_internal.func_settings_redacted(jsonb, text[])',
        'public.func_put_settings(text, jsonb, bigint, text, jsonb, text, text, text)'
    ]::regprocedure[]);
