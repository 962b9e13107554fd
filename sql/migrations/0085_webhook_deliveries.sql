-- 0085_webhook_deliveries.sql
-- Provider webhooks (POST /api/webhooks/{provider}, sql/functions/providers/webhooks.sql):
-- each delivery is recorded once per (provider, delivery id) in the same transaction that
-- applies its status, so a replay, or the same delivery reaching two instances at once,
-- is applied exactly once. The seed had no receiver at all: a provider with a webhook URL
-- had its polling switched off and its jobs never finished in the hub.

CREATE TABLE IF NOT EXISTS public.webhook_deliveries (
    provider        text        NOT NULL CHECK (provider <> '' AND length(provider) <= 63),
    delivery_id     text        NOT NULL CHECK (delivery_id <> '' AND length(delivery_id) <= 255),
    received_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    job_id          uuid,
    provider_job_id text,
    status          text,
    outcome         text        NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'ignored')),
    payload_sha256  text        CHECK (payload_sha256 ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_received_idx ON public.webhook_deliveries (received_at);
COMMENT ON TABLE public.webhook_deliveries IS
    'One row per provider webhook delivery (provider + webhook-id, else the body''s sha256), written by func_record_webhook() in the transaction that applies it: a replay finds its row and changes nothing. Pruned after 7 days by func_prune_webhook_deliveries().';
COMMENT ON COLUMN public.webhook_deliveries.outcome IS
    'applied: the job''s status changed; unchanged: the job already had it (or was finished); ignored: no job of this provider matched.';

-- Webhooks name the provider's own job id; resolving it must not scan the jobs table.
CREATE INDEX IF NOT EXISTS jobs_provider_job_idx
    ON public.jobs (provider, provider_job_id) WHERE provider_job_id IS NOT NULL;
COMMENT ON INDEX public.jobs_provider_job_idx IS
    'Resolves a provider webhook''s job by (provider, provider_job_id) (func_record_webhook).';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.webhook_deliveries']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.webhook_deliveries');
