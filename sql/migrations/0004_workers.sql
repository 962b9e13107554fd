-- 0004_workers.sql
-- The workers' registry: one row per worker, created by its first heartbeat and updated
-- by every later one (sql/functions/workers/heartbeat.sql).

CREATE TABLE IF NOT EXISTS public.workers (
    worker_id         text        PRIMARY KEY,
    status            text        NOT NULL
        CONSTRAINT workers_status_check
        CHECK (status IN ('starting', 'idle', 'busy', 'draining', 'stopped', 'dead')),
    current_task_id   uuid,
    hostname          text,
    vram_total_mb     integer,
    vram_used_mb      integer,
    metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_count   bigint      NOT NULL DEFAULT 0
);

-- The reaper finds stale workers by "last_heartbeat_at < now() - interval".
CREATE INDEX IF NOT EXISTS workers_last_heartbeat_idx
    ON public.workers (last_heartbeat_at);

COMMENT ON TABLE public.workers IS
    'One row per worker (GPU or CPU), created by its first heartbeat and updated by every later one through func_worker_heartbeat_with_logs().';
COMMENT ON COLUMN public.workers.worker_id IS 'The worker''s own stable name, e.g. gpu-20250115-abc123; also source_id and worker_id of its logs.';
COMMENT ON COLUMN public.workers.status IS 'starting, idle, busy, draining or stopped as the worker last reported it; dead when a reaper declared it so.';
COMMENT ON COLUMN public.workers.current_task_id IS 'The task the worker reported at its last heartbeat (NULL when none).';
COMMENT ON COLUMN public.workers.hostname IS 'From the heartbeat metadata key "hostname"; kept when a later heartbeat omits it.';
COMMENT ON COLUMN public.workers.vram_total_mb IS 'From the heartbeat metadata key "vram_total_mb" (a number or numeric string); kept when a later heartbeat omits it.';
COMMENT ON COLUMN public.workers.vram_used_mb IS 'From the heartbeat metadata key "vram_used_mb" (a number or numeric string); kept when a later heartbeat omits it.';
COMMENT ON COLUMN public.workers.metadata IS 'Every heartbeat''s metadata object merged key by key (newest wins). Replaced instead of merged once the merge would exceed 64 KiB.';
COMMENT ON COLUMN public.workers.first_seen_at IS 'When the first heartbeat arrived (server clock).';
COMMENT ON COLUMN public.workers.last_heartbeat_at IS 'When the latest heartbeat arrived (server clock; never moves backwards).';
COMMENT ON COLUMN public.workers.heartbeat_count IS 'Heartbeats received since first_seen_at; every one counts, concurrent ones included.';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.workers']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.workers');
