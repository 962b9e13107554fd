-- 0086_provider_health.sql
-- The circuit breaker of each external provider (sql/functions/providers/circuit.sql),
-- shared by every daemon and instance: after repeated failed calls the provider is
-- skipped (no dispatch, no job attempt spent) until a half-open probe succeeds. The seed
-- kept breaker state per process, so each replica hammered a provider that was down.

CREATE TABLE IF NOT EXISTS public.provider_health (
    provider             text        PRIMARY KEY CHECK (provider <> '' AND length(provider) <= 63),
    state                text        NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures integer     NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    opened_at            timestamptz,
    probe_started_at     timestamptz,
    ok_total             bigint      NOT NULL DEFAULT 0,
    failed_total         bigint      NOT NULL DEFAULT 0,
    last_error           text,
    updated_at           timestamptz NOT NULL DEFAULT clock_timestamp()
) WITH (fillfactor = 70);  -- updated on every recorded call: room for HOT updates
COMMENT ON TABLE public.provider_health IS
    'One row per external provider: its circuit breaker (closed, open, half_open), consecutive failures, totals and last error. Written by func_record_provider_call() and func_provider_circuit_allow(); read by func_provider_health().';
COMMENT ON COLUMN public.provider_health.probe_started_at IS
    'When the one call let through in half_open started; another is let through only after the cool-down passes again.';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.provider_health']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.provider_health');
