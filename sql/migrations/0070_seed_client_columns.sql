-- 0070_seed_client_columns.sql
-- What the seed orchestrator's own clients need from the tables (README "Coming from the
-- seed's orchestrator"); the functions and views they call are in sql/functions/
-- (workers/heartbeat.sql, logs/views.sql, logs/defaults.sql).
--   * A plain INSERT INTO system_logs (source_type, source_id, log_level, message) from
--     the SQL editor, as the seed's guide shows: id and "timestamp" get defaults here;
--     severity_number is derived from log_level by a trigger (logs/defaults.sql),
--     because a column default cannot read another column.
--   * The columns the seed reads from workers through PostgREST
--     (GET /rest/v1/workers?select=id,instance_type,last_heartbeat&...): PostgREST
--     selects, filters and orders on real columns only, and a view cannot take the
--     table's name, so they are stored generated columns over the hub's own. Nothing
--     writes them; the heartbeat that updates the row updates them in the same tuple.

ALTER TABLE public.system_logs ALTER COLUMN id SET DEFAULT hub_internal.func_uuid_v7();
ALTER TABLE public.system_logs ALTER COLUMN "timestamp" SET DEFAULT now();

ALTER TABLE public.workers
    ADD COLUMN IF NOT EXISTS id text GENERATED ALWAYS AS (worker_id) STORED,
    ADD COLUMN IF NOT EXISTS last_heartbeat timestamptz GENERATED ALWAYS AS (last_heartbeat_at) STORED,
    ADD COLUMN IF NOT EXISTS instance_type text GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(metadata -> 'instance_type') = 'string'
             THEN left(metadata ->> 'instance_type', 255) END) STORED;

COMMENT ON COLUMN public.workers.id IS 'The seed''s name for worker_id (generated; read-only).';
COMMENT ON COLUMN public.workers.last_heartbeat IS 'The seed''s name for last_heartbeat_at (generated; read-only).';
COMMENT ON COLUMN public.workers.instance_type IS 'The heartbeat metadata''s "instance_type" string, as the seed''s workers list shows it (generated; read-only; NULL when never reported).';
