-- 0033_hub_settings.sql
-- Runtime settings shared by every hub instance (sql/functions/ops/settings.sql): one
-- row per scope (the metrics export now; provider network settings next), versioned for
-- optimistic concurrency, each change audited. The seed kept such settings in a
-- per-process singleton, so a change applied only in the process that served it.

CREATE TABLE IF NOT EXISTS public.hub_settings (
    scope      text        PRIMARY KEY CHECK (scope ~ '^(metrics|provider:[a-z0-9][a-z0-9_-]{0,62})$'),
    settings   jsonb       NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
    version    bigint      NOT NULL CHECK (version >= 0),  -- 0 only inside the creating transaction
    updated_at timestamptz NOT NULL,
    updated_by text
);
COMMENT ON TABLE public.hub_settings IS
    'Runtime settings per scope (metrics, provider:<name>), shared by every instance: written only by func_put_settings() (merge, version check, config_changed audit event), read by func_get_settings().';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.hub_settings']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.hub_settings');
