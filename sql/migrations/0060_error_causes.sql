-- 0060_error_causes.sql
-- The errors summary groups ERROR/CRITICAL rows by message; a message such as "Task
-- failed" says that something failed, its exception says why. The message rollup keeps,
-- per group and hour, the last line of the most recent exception seen in it (the
-- exception's type and text, e.g. "MemoryError: CUDA out of memory"), filled on write by
-- the rollup trigger (sql/functions/logs/rollups.sql). Hours rolled up before this
-- migration have no cause until recounted with hub_internal.func_log_rollups_rebuild.

ALTER TABLE public.system_log_error_counts
    ADD COLUMN IF NOT EXISTS cause text,
    ADD COLUMN IF NOT EXISTS cause_seen timestamptz;
COMMENT ON COLUMN public.system_log_error_counts.cause IS
    'The last non-blank line of the most recent exception of the group in this hour (NULL when none of its rows had one), at most 500 characters.';
COMMENT ON COLUMN public.system_log_error_counts.cause_seen IS
    'The "timestamp" of the row whose exception gave cause, so a batch of older rows arriving late does not replace a newer cause.';
