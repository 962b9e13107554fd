-- 0061_log_pages_as_json.sql
-- func_query_logs and the two timelines now return json instead of jsonb: the page is
-- built with json_agg, which writes each row's text once, where jsonb_agg(to_jsonb(row))
-- parsed every row into a binary tree only to print it again (a 1,000-row page: 13 ms
-- against 37 ms; bench/RESULTS.md, issue 20 item 4). The answer's shape is unchanged.
-- CREATE OR REPLACE cannot change a return type, so the jsonb versions are dropped here
-- and sql/functions/logs/queries.sql creates the json ones, with their grants and
-- comments, in the same transaction. Nothing in the database depends on them (no view
-- calls them; func_task_timeline and func_worker_timeline call func_query_logs by name
-- at run time).
DROP FUNCTION IF EXISTS public.func_task_timeline(uuid, timestamptz, uuid, integer);
DROP FUNCTION IF EXISTS public.func_worker_timeline(text, timestamptz, timestamptz, timestamptz, uuid, integer);
DROP FUNCTION IF EXISTS public.func_query_logs(timestamptz, timestamptz, text, jsonb, text, text, text, uuid, integer, text, timestamptz, uuid, boolean, integer, jsonb);
