-- 0080_rate_limit_buckets.sql
-- The rate limiter's shared state (sql/functions/ops/rate_limit.sql): one row per
-- (rule, client) bucket holding the accepted hits still inside its window, so every
-- `orchestrator serve` instance on this database enforces one exact limit. What the seed
-- got wrong, and what this does instead:
--   * state lived in a per-process dict -> one table every instance shares;
--   * `SELECT ... FOR UPDATE` on a missing row locked nothing, so two first requests
--     overwrote each other -> the row is created first (ON CONFLICT), then locked;
--   * rejected requests were appended too (the row grew under attack and a retrying
--     client never recovered) -> only accepted hits are stored, at most max per row;
--   * the application's clocks of different hosts -> the database clock.
-- UNLOGGED: a crash empties it, which only resets windows; no WAL per request.

CREATE UNLOGGED TABLE IF NOT EXISTS public.rate_limit_buckets (
    bucket          text        PRIMARY KEY CHECK (length(bucket) BETWEEN 1 AND 512),
    hits            timestamptz[] NOT NULL,
    window_seconds  double precision NOT NULL CHECK (window_seconds > 0),
    updated_at      timestamptz NOT NULL,
    violations      bigint      NOT NULL DEFAULT 0,
    last_audited_at timestamptz
);
-- A bucket of a high limit holds thousands of timestamps rewritten on every hit:
-- compressing them each time cost 2 ms per decision at 2,000 hits, storing them
-- uncompressed (out of line when large) 0.3 ms (bench/rate_limit.py, issue 17).
ALTER TABLE public.rate_limit_buckets ALTER COLUMN hits SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS rate_limit_buckets_updated_idx ON public.rate_limit_buckets (updated_at);
COMMENT ON TABLE public.rate_limit_buckets IS
    'Sliding-log rate limit buckets (<rule>|<client key>): the accepted hits inside the window, oldest first, at most the limit; rejected attempts only count in violations. Written by func_rate_limit_hit(), read by func_rate_limit_usage(), idle rows removed by func_rate_limit_prune(). UNLOGGED: a crash only resets windows.';

SELECT hub_internal.func_hub_secure(p_tables => ARRAY['public.rate_limit_buckets']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy('public.rate_limit_buckets');
