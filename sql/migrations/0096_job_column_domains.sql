-- 0096_job_column_domains.sql
-- The rules on the values of jobs and job_queue move from table CHECK constraints to the
-- columns' types (domains): the same rules, checked where a value is written, not on
-- every update of a row whatever it changes.
--
-- Why: PostgreSQL evaluates every CHECK constraint of a table on every UPDATE of any of
-- its columns, and it reads each one's stored expression and plans it again in every
-- statement that writes the table (ExecRelCheck: stringToNode + ExecPrepareExpr). A
-- claim and a completion update jobs and job_queue twice each: seven constraints of jobs
-- and two of job_queue re-planned four times a job, 9 % of a claim + completion's server
-- time in a profile (perf, 784 µs a job). A domain's check is planned once per session
-- (the type cache) and runs only when a value of that type is written: the hot path sets
-- status and attempts (checked, cheaply) and never priority, payload, max_attempts,
-- estimated_cost or timeout_seconds (not re-checked: they did not change).
-- Measured inside the server (bench/job_queue_server.py's fused loop): 757 -> 684 µs a
-- job; the constraints dropped altogether gave 662.
--
-- What does not change: the accepted values, NULL where it was allowed (a domain's CHECK,
-- like a table's, passes NULL), and that a direct write of a bad value is refused (now
-- "value for domain hub_internal.job_priority violates check constraint ..."). What
-- clients see: a domain's values are sent as their base type (the wire protocol reports
-- the base type), so drivers and JSON read integers, text and jsonb as before.
-- job_queue_running_has_lease stays a table constraint: it relates two columns.
--
-- Upgrade cost: no table rewrite. The columns change to domains without a constraint
-- (binary-compatible, so no rewrite and no index rebuild), then the domains get their
-- constraints NOT VALID and are validated (one scan, rows are not rewritten).

DO $$
DECLARE
    v_domain record;
BEGIN
    FOR v_domain IN
        SELECT * FROM (VALUES
            ('job_status', 'text'),
            ('queue_status', 'text'),
            ('job_priority', 'integer'),
            ('job_payload', 'jsonb'),
            ('job_attempts', 'integer'),
            ('job_max_attempts', 'integer'),
            ('job_estimated_cost', 'numeric'),
            ('job_timeout_seconds', 'integer')) AS d(name, base)
    LOOP
        IF to_regtype('hub_internal.' || v_domain.name) IS NULL THEN
            EXECUTE format('CREATE DOMAIN hub_internal.%I AS %s', v_domain.name, v_domain.base);
            -- nobody needs USAGE to read or write a column of the type
            EXECUTE format('REVOKE ALL ON DOMAIN hub_internal.%I FROM PUBLIC', v_domain.name);
        END IF;
    END LOOP;
END;
$$;

ALTER TABLE public.jobs
    DROP CONSTRAINT IF EXISTS jobs_status_check,
    DROP CONSTRAINT IF EXISTS jobs_priority_check,
    DROP CONSTRAINT IF EXISTS jobs_payload_check,
    DROP CONSTRAINT IF EXISTS jobs_attempts_check,
    DROP CONSTRAINT IF EXISTS jobs_max_attempts_check,
    DROP CONSTRAINT IF EXISTS jobs_estimated_cost_check,
    DROP CONSTRAINT IF EXISTS jobs_timeout_seconds_check,
    ALTER COLUMN status TYPE hub_internal.job_status,
    ALTER COLUMN priority TYPE hub_internal.job_priority,
    ALTER COLUMN payload TYPE hub_internal.job_payload,
    ALTER COLUMN attempts TYPE hub_internal.job_attempts,
    ALTER COLUMN max_attempts TYPE hub_internal.job_max_attempts,
    ALTER COLUMN estimated_cost TYPE hub_internal.job_estimated_cost,
    ALTER COLUMN timeout_seconds TYPE hub_internal.job_timeout_seconds;
ALTER TABLE public.job_queue
    DROP CONSTRAINT IF EXISTS job_queue_status_check,
    ALTER COLUMN status TYPE hub_internal.queue_status;

DO $$
DECLARE
    v_rule record;
BEGIN
    FOR v_rule IN
        SELECT * FROM (VALUES
            ('job_status', 'VALUE IN (''awaiting_approval'', ''queued'', ''running'', ''completed'', ''failed'', ''cancelled'')'),
            ('queue_status', 'VALUE IN (''pending_approval'', ''scheduled'', ''queued'', ''running'', ''completed'', ''failed'', ''cancelled'')'),
            ('job_priority', 'VALUE BETWEEN 0 AND 1000'),
            ('job_payload', 'jsonb_typeof(VALUE) = ''object'''),
            ('job_attempts', 'VALUE >= 0'),
            ('job_max_attempts', 'VALUE BETWEEN 1 AND 100'),
            ('job_estimated_cost', 'VALUE >= 0'),
            ('job_timeout_seconds', 'VALUE BETWEEN 1 AND 604800')) AS r(name, rule)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                        WHERE contypid = ('hub_internal.' || v_rule.name)::regtype
                          AND conname = v_rule.name || '_check') THEN
            EXECUTE format('ALTER DOMAIN hub_internal.%I ADD CONSTRAINT %I CHECK (%s) NOT VALID',
                           v_rule.name, v_rule.name || '_check', v_rule.rule);
            EXECUTE format('ALTER DOMAIN hub_internal.%I VALIDATE CONSTRAINT %I',
                           v_rule.name, v_rule.name || '_check');
        END IF;
    END LOOP;
END;
$$;

COMMENT ON DOMAIN hub_internal.job_status IS
    'jobs.status: awaiting_approval -> queued -> running -> completed | failed | cancelled.';
COMMENT ON DOMAIN hub_internal.queue_status IS
    'job_queue.status: pending_approval, scheduled (run_after in the future), queued, running, completed, failed, cancelled.';
COMMENT ON DOMAIN hub_internal.job_priority IS 'jobs.priority: 0..1000, higher runs first.';
COMMENT ON DOMAIN hub_internal.job_payload IS 'jobs.payload: a JSON object.';
COMMENT ON DOMAIN hub_internal.job_attempts IS 'jobs.attempts: claims so far, >= 0.';
COMMENT ON DOMAIN hub_internal.job_max_attempts IS 'jobs.max_attempts: 1..100.';
COMMENT ON DOMAIN hub_internal.job_estimated_cost IS 'jobs.estimated_cost: >= 0 (NULL: unknown).';
COMMENT ON DOMAIN hub_internal.job_timeout_seconds IS 'jobs.timeout_seconds: 1 s .. 7 days (NULL: no limit).';
