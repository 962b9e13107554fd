-- 0006_daemon_leases.sql
-- Duty leases of the orchestrator daemon (sql/functions/daemon/leases.sql): one row per
-- duty, its holder and expiry. Two daemons against one database never run the same duty
-- at the same time.

CREATE TABLE IF NOT EXISTS public.daemon_leases (
    duty        text PRIMARY KEY CHECK (duty <> ''),
    holder      text NOT NULL CHECK (holder <> ''),
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
COMMENT ON TABLE public.daemon_leases IS
    'One row per daemon duty: which daemon holds it and until when. Written only by func_try_duty_lease and func_release_duty_lease.';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.daemon_leases']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.daemon_leases');
