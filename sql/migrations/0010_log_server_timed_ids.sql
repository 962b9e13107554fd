-- 0010_log_server_timed_ids.sql
-- Idempotency for log entries whose time the server chooses. system_logs is keyed on
-- ("timestamp", id), so an entry stored at arrival time (its timestamp missing, or more
-- than 30 days old or 1 hour ahead) would get a new arrival time on a retry and be
-- stored twice. The ids of such entries are registered here first (sql/functions/logs/
-- ingest.sql): an id already registered is a duplicate, whatever time the retry brings.
-- Rows are few (broken clocks, clients that send no time); retention deletes them with
-- the logs they stand for (sql/functions/logs/retention.sql).

CREATE TABLE IF NOT EXISTS public.system_log_server_timed_ids (
    id          uuid        PRIMARY KEY,
    "timestamp" timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS system_log_server_timed_ids_time_idx
    ON public.system_log_server_timed_ids ("timestamp");

COMMENT ON TABLE public.system_log_server_timed_ids IS
    'Ids of the log entries stored at arrival time (timestamp missing or out of the accepted window), so a retry of one is recognised as a duplicate. Maintained by the insert functions and retention.';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.system_log_server_timed_ids']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.system_log_server_timed_ids');
