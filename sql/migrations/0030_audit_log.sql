-- 0030_audit_log.sql
-- The audit trail of `orchestrator serve` (sql/functions/ops/audit.sql): security events
-- (auth_failed, ...) and configuration changes, as ONE hash chain across any number of
-- hub instances. What the seed got wrong, and what this does instead:
--   * the chain was serialised by a per-process lock, so two processes forked it -> every
--     append takes one transaction-scoped advisory lock, reads the newest hash and gets its
--     id under that lock, so id order is chain order whoever appends;
--   * the hash covered only some fields (IP, target and user were editable undetected) ->
--     entry_hash = sha256(prev_hash || every field of the row, id included);
--   * rows were editable by the application -> a trigger refuses UPDATE, DELETE and
--     TRUNCATE (retention excepted), and service_role gets INSERT and SELECT only.
--   * event names (security.rate_limited) did not match the documented queries -> plain
--     snake_case names (rate_limited, auth_failed, config_changed, ...).

CREATE TABLE IF NOT EXISTS public.audit_log (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at    timestamptz NOT NULL,
    event_type     text        NOT NULL CHECK (event_type ~ '^[a-z][a-z0-9_]{1,63}$'),
    actor          text,
    actor_ip       inet,
    target_type    text,
    target_id      text,
    action         text        NOT NULL,
    details        jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
    correlation_id text,
    instance_id    text,
    prev_hash      bytea       NOT NULL CHECK (octet_length(prev_hash) = 32),
    entry_hash     bytea       NOT NULL UNIQUE CHECK (octet_length(entry_hash) = 32)
);
CREATE INDEX IF NOT EXISTS audit_log_occurred_idx ON public.audit_log (occurred_at);
CREATE INDEX IF NOT EXISTS audit_log_type_idx ON public.audit_log (event_type, id);
CREATE INDEX IF NOT EXISTS audit_log_target_idx ON public.audit_log (target_type, target_id, id);
CREATE INDEX IF NOT EXISTS audit_log_actor_ip_idx ON public.audit_log (actor_ip, id);
COMMENT ON TABLE public.audit_log IS
    'Append-only audit trail, one hash chain: entry_hash = sha256(prev_hash || the row''s fields); written only by func_audit_append(), checked by func_audit_verify(), pruned (oldest first) only by func_audit_prune().';

-- Exact count of every event ever appended, throttled ones included (metrics).
CREATE TABLE IF NOT EXISTS public.audit_event_counts (
    event_type text   PRIMARY KEY,
    n          bigint NOT NULL
);
COMMENT ON TABLE public.audit_event_counts IS
    'Events appended per type since the hub was installed, including those func_audit_append throttled (not written as rows).';

-- Noisy security events (auth_failed, rate_limited, ...) write at most one row per
-- (event type, key) per window; the rest are counted here and in audit_event_counts.
CREATE TABLE IF NOT EXISTS public.audit_throttle (
    event_type      text        NOT NULL,
    throttle_key    text        NOT NULL,
    last_written_at timestamptz NOT NULL,
    suppressed      bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (event_type, throttle_key)
);
COMMENT ON TABLE public.audit_throttle IS
    'When each throttled (event type, key) last wrote an audit row, and how many of its events were suppressed since.';

SELECT hub_internal.func_hub_secure(
    p_tables => ARRAY['public.audit_log', 'public.audit_event_counts', 'public.audit_throttle']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy(t)
  FROM unnest(ARRAY['public.audit_log', 'public.audit_event_counts', 'public.audit_throttle']::regclass[]) AS t;
-- service_role appends and reads the trail; it may never change or remove a row.
DO $$
DECLARE
    v_role text;
BEGIN
    REVOKE ALL ON SEQUENCE public.audit_log_id_seq FROM PUBLIC;
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON SEQUENCE public.audit_log_id_seq FROM %I', v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON public.audit_log FROM service_role;
        -- func_audit_append takes the id before hashing it (nextval)
        GRANT USAGE ON SEQUENCE public.audit_log_id_seq TO service_role;
    END IF;
END;
$$;
