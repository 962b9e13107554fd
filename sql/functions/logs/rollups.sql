-- sql/functions/logs/rollups.sql
-- Count rollups of system_logs (tables in sql/migrations/0003), maintained on write, so
-- aggregates over long windows read thousands of rollup rows instead of millions of log
-- rows, and stay EXACT.
--
-- One statement-level AFTER INSERT trigger on the partitioned parent maintains both from
-- its transition table, so every path that writes through the parent is counted: the
-- jsonb RPC (func_insert_logs_batch), the staged COPY (func_insert_staged_logs) and the
-- handler's binary COPY into public.system_logs. Rows skipped by ON CONFLICT DO NOTHING
-- (retried batches) are not in the transition table, so they are not counted. Rows
-- written straight into a partition (never done by the hub) are not counted: repair with
-- hub_internal.func_log_rollups_rebuild(since, until). Logs are append-only; an UPDATE or
-- DELETE done by hand needs the same repair.
--
-- A window [since, until) is read as: whole hours from the 'hour' rows, whole minutes at
-- both ends from the 'minute' rows, and the partial minutes at both edges from the log
-- rows themselves (primary-key range scans), so the result equals a count over the raw
-- rows for any window (func_log_counts). Error messages: whole hours from the message
-- rollup, the partial hours at both edges from the rows (errors partial index).

-- The fingerprint that groups error messages: md5 of the first 200 characters, as a
-- uuid (16 bytes). 200 characters keep apart every message people tell apart by eye,
-- while a long tail (an appended traceback or payload) does not split a group.
CREATE OR REPLACE FUNCTION hub_internal.func_log_message_fingerprint(p_message text)
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT md5(left(p_message, 200))::uuid
$$;
COMMENT ON FUNCTION hub_internal.func_log_message_fingerprint(text) IS
    'Groups error messages in system_log_error_counts: md5 of the first 200 characters of the message, as a uuid.';

-- The lock that makes a recount of one UTC hour meet the trigger exactly: writers take it
-- shared for each hour they count into, a rebuild takes it exclusive for each hour it
-- recounts. Per hour, so a rebuild of past hours (retention's) never holds up writers
-- of the current one.
CREATE OR REPLACE FUNCTION hub_internal.func_log_rollup_hour_key(p_hour timestamptz)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT (extract(epoch FROM date_trunc('hour', p_hour, 'UTC')) / 3600)::integer
$$;
COMMENT ON FUNCTION hub_internal.func_log_rollup_hour_key(timestamptz) IS
    'The advisory lock key (second half; the first is hashtext(''orchestrator_hub.log_rollups'')) of the UTC hour of p_hour: hours since 1970.';
-- The cause of an error: the last non-blank line of its exception, where Python (and
-- most runtimes) put the exception's type and text ("MemoryError: CUDA out of memory"),
-- at most 500 characters; NULL for no exception or a blank one. Trailing blank lines are
-- trimmed, then the text after the last newline is taken: linear in the text. (A regex
-- anchored at the end, '([^\n]*\S[^\n]*)\s*$', backtracked from every position: 20 us a
-- row, which made the errors summary of a 24 h window at 10M rows 10x slower through
-- its two partial hours; bench/RESULTS.md.)
CREATE OR REPLACE FUNCTION hub_internal.func_log_exception_cause(p_exception text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT nullif(left(btrim(reverse(split_part(reverse(
               rtrim(p_exception, E' \t\r\n\f' || chr(11))), E'\n', 1)), E' \t\r\f' || chr(11)), 500), '')
$$;
COMMENT ON FUNCTION hub_internal.func_log_exception_cause(text) IS
    'The cause of an error for the errors summary: the last non-blank line of the exception text, trimmed, at most 500 characters (NULL when there is none).';

-- Adds a set of log rows (the transition table of the trigger, or log rows being
-- recounted) to both rollups. Each upsert visits its keys in key order, so concurrent
-- writers lock the same rollup rows in the same order and cannot deadlock; both tables
-- are always visited in the same order (counts, then errors). First it takes the hour
-- locks of the hours it counts into, shared and in order (a batch spans one or two).
CREATE OR REPLACE FUNCTION hub_internal.func_log_rollups_trigger()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- writers of logs need no right to write the counts themselves
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    -- Every hour from the batch's first to its last (one or two, as a rule): min and
    -- max cost one pass, far less than the distinct hours of every row.
    PERFORM pg_advisory_xact_lock_shared(hashtext('orchestrator_hub.log_rollups'), h.key)
       FROM (SELECT hub_internal.func_log_rollup_hour_key(min(n."timestamp")) AS low,
                    hub_internal.func_log_rollup_hour_key(max(n."timestamp")) AS high
               FROM new_rows n) AS b
      CROSS JOIN LATERAL generate_series(b.low, b.high) AS h(key);
    INSERT INTO public.system_log_counts AS c
           (resolution, bucket, log_level, source_type, source_id, worker_id, count, errors, last_seen)
    SELECT r.resolution, date_trunc(r.resolution, n."timestamp", 'UTC'),
           n.log_level, n.source_type, n.source_id, n.worker_id,
           count(*), count(*) FILTER (WHERE n.severity_number >= 17), max(n."timestamp")
      FROM new_rows n
     CROSS JOIN (VALUES ('minute'), ('hour')) AS r(resolution)
     GROUP BY 1, 2, 3, 4, 5, 6
     ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (resolution, bucket, log_level, source_type, source_id, worker_id) DO UPDATE
       SET count = c.count + excluded.count,
           errors = c.errors + excluded.errors,
           last_seen = greatest(c.last_seen, excluded.last_seen);

    INSERT INTO public.system_log_error_counts AS e
           (bucket, log_level, source_type, fingerprint, count, first_seen, last_seen, message,
            cause, cause_seen)
    SELECT date_trunc('hour', n."timestamp", 'UTC'), n.log_level, n.source_type,
           hub_internal.func_log_message_fingerprint(n.message),
           count(*), min(n."timestamp"), max(n."timestamp"),
           (array_agg(n.message ORDER BY n."timestamp", n.id))[1],
           (array_agg(n.cause ORDER BY n."timestamp" DESC, n.id DESC)
                FILTER (WHERE n.cause IS NOT NULL))[1],
           max(n."timestamp") FILTER (WHERE n.cause IS NOT NULL)
      FROM (SELECT r."timestamp", r.id, r.log_level, r.source_type, r.message,
                   hub_internal.func_log_exception_cause(r.exception) AS cause
              FROM new_rows r
             WHERE r.severity_number >= 17) AS n
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, log_level, source_type, fingerprint) DO UPDATE
       SET count = e.count + excluded.count,
           message = CASE WHEN excluded.first_seen < e.first_seen THEN excluded.message ELSE e.message END,
           -- the most recent cause, whichever batch brought it (a late one may not)
           cause = CASE WHEN excluded.cause_seen >= e.cause_seen OR e.cause_seen IS NULL
                        THEN coalesce(excluded.cause, e.cause) ELSE e.cause END,
           cause_seen = greatest(e.cause_seen, excluded.cause_seen),
           first_seen = least(e.first_seen, excluded.first_seen),
           last_seen = greatest(e.last_seen, excluded.last_seen);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_log_rollups_trigger() IS
    'Statement-level AFTER INSERT trigger of system_logs: adds the inserted rows (transition table new_rows) to system_log_counts and system_log_error_counts, upserting in key order.';

-- Recounts the rollups of the whole UTC hours that overlap [since, until) from the log
-- rows: the backfill, the repair after a hand-made change, and retention's tool for the
-- rows it deletes from the default partition. The hours are locked against the trigger
-- first (each hour's advisory lock, exclusive, in order: writers into those hours wait,
-- writers into any other hour, the current one included, proceed), so every log row is
-- counted exactly once: a writer that counted before the lock has committed and its
-- rows are recounted here; a writer that counts after it adds to the recount. Needs
-- READ COMMITTED (each statement sees what committed before it), the default isolation.
CREATE OR REPLACE FUNCTION hub_internal.func_log_rollups_rebuild(since timestamptz, until timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER  -- service_role runs it from retention; the rollups are not its to lock
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_from timestamptz := date_trunc('hour', since, 'UTC');
    v_to timestamptz := date_trunc('hour', until, 'UTC');
    v_rows bigint;
BEGIN
    IF since IS NULL OR until IS NULL OR until < since THEN
        RAISE EXCEPTION 'since and until must be times with since <= until, got % and %',
            coalesce(since::text, 'NULL'), coalesce(until::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'func_log_rollups_rebuild needs READ COMMITTED isolation, got %',
            current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
    END IF;
    IF v_to < until THEN
        v_to := v_to + interval '1 hour';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('orchestrator_hub.log_rollups'),
                                  hub_internal.func_log_rollup_hour_key(h.hour))
       FROM generate_series(v_from, v_to - interval '1 hour', interval '1 hour') AS h(hour)
      ORDER BY h.hour;
    DELETE FROM public.system_log_counts WHERE bucket >= v_from AND bucket < v_to;
    DELETE FROM public.system_log_error_counts WHERE bucket >= v_from AND bucket < v_to;

    INSERT INTO public.system_log_counts
           (resolution, bucket, log_level, source_type, source_id, worker_id, count, errors, last_seen)
    SELECT r.resolution, date_trunc(r.resolution, s."timestamp", 'UTC'),
           s.log_level, s.source_type, s.source_id, s.worker_id,
           count(*), count(*) FILTER (WHERE s.severity_number >= 17), max(s."timestamp")
      FROM public.system_logs s
     CROSS JOIN (VALUES ('minute'), ('hour')) AS r(resolution)
     WHERE s."timestamp" >= v_from AND s."timestamp" < v_to
     GROUP BY 1, 2, 3, 4, 5, 6;
    INSERT INTO public.system_log_error_counts
           (bucket, log_level, source_type, fingerprint, count, first_seen, last_seen, message,
            cause, cause_seen)
    SELECT date_trunc('hour', s."timestamp", 'UTC'), s.log_level, s.source_type,
           hub_internal.func_log_message_fingerprint(s.message),
           count(*), min(s."timestamp"), max(s."timestamp"),
           (array_agg(s.message ORDER BY s."timestamp", s.id))[1],
           (array_agg(s.cause ORDER BY s."timestamp" DESC, s.id DESC)
                FILTER (WHERE s.cause IS NOT NULL))[1],
           max(s."timestamp") FILTER (WHERE s.cause IS NOT NULL)
      FROM (SELECT l."timestamp", l.id, l.log_level, l.source_type, l.message,
                   hub_internal.func_log_exception_cause(l.exception) AS cause
              FROM public.system_logs l
             WHERE l."timestamp" >= v_from AND l."timestamp" < v_to
               AND l.severity_number >= 17) AS s
     GROUP BY 1, 2, 3, 4;
    SELECT coalesce(sum(count), 0) INTO v_rows
      FROM public.system_log_counts WHERE resolution = 'hour' AND bucket >= v_from AND bucket < v_to;
    RETURN jsonb_build_object('success', true, 'from', v_from, 'to', v_to, 'rows_counted', v_rows);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_log_rollups_rebuild(timestamptz, timestamptz) IS
    'Recounts system_log_counts and system_log_error_counts for the whole UTC hours overlapping [since, until) from system_logs (backfill, repair after hand-made changes). Locks those hours (not other hours) against concurrent counting for its duration. Returns {success, from, to, rows_counted}.';

-- Exact counts per (log_level, source_type, source_id, worker_id) over [since, until),
-- optionally of one source_type and/or one worker, or only of keys with errors: whole
-- hours from the 'hour' rows, whole minutes at both ends from the 'minute' rows, the
-- partial minutes at both edges from system_logs (primary-key range scans). The one
-- place that knows how a window is cut into pieces; func_log_statistics and
-- func_log_errors_summary read through it. As in func_query_logs, the statement is built from
-- fixed fragments (one per filter given) and run with EXECUTE ... USING, so each call
-- is planned with its values: partitions are pruned, and with only_errors the partial
-- index of the error keys (system_log_counts_errors) and system_logs_errors_time_idx serve.
-- The rows are few (at most a few tens of thousands), so no parallel workers are started.
CREATE OR REPLACE FUNCTION hub_internal.func_log_counts(
    since timestamptz,
    until timestamptz,
    only_source_type text DEFAULT NULL,
    only_worker_id text DEFAULT NULL,
    only_errors boolean DEFAULT false
) RETURNS TABLE (log_level text, source_type text, source_id text, worker_id text,
                 count bigint, errors bigint, last_seen timestamptz)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    -- [since, m1) and [m2, until) are partial minutes; [m1, h1) and [h2, m2) whole
    -- minutes; [h1, h2) whole hours. Empty pieces collapse onto until or m2.
    v_m1 timestamptz := date_trunc('minute', since, 'UTC');
    v_m2 timestamptz := date_trunc('minute', until, 'UTC');
    v_h1 timestamptz;
    v_h2 timestamptz;
    v_raw text;     -- conditions on system_logs s
    v_rollup text;  -- conditions on system_log_counts c
BEGIN
    IF v_m1 < since THEN
        v_m1 := v_m1 + interval '1 minute';
    END IF;
    IF NOT v_m1 < v_m2 THEN
        v_m1 := until;
        v_m2 := until;
    END IF;
    v_h1 := date_trunc('hour', v_m1, 'UTC');
    IF v_h1 < v_m1 THEN
        v_h1 := v_h1 + interval '1 hour';
    END IF;
    v_h2 := date_trunc('hour', v_m2, 'UTC');
    IF NOT v_h1 < v_h2 THEN
        v_h1 := v_m2;
        v_h2 := v_m2;
    END IF;
    v_raw := concat(CASE WHEN only_source_type IS NOT NULL THEN ' AND s.source_type = $7' END,
                    CASE WHEN only_worker_id IS NOT NULL THEN ' AND s.worker_id = $8' END,
                    CASE WHEN only_errors THEN ' AND s.severity_number >= 17' END);
    v_rollup := concat(CASE WHEN only_source_type IS NOT NULL THEN ' AND c.source_type = $7' END,
                       CASE WHEN only_worker_id IS NOT NULL THEN ' AND c.worker_id = $8' END,
                       CASE WHEN only_errors THEN ' AND c.errors > 0' END);

    -- Grouped under the "C" collation: equality is the same, and hashing or sorting
    -- text that way is several times cheaper than under a linguistic collation.
    RETURN QUERY EXECUTE format($q$
        SELECT p.log_level COLLATE "C", p.source_type COLLATE "C", p.source_id COLLATE "C",
               p.worker_id COLLATE "C", sum(p.n)::bigint, sum(p.e)::bigint, max(p.last)
          FROM (
            SELECT s.log_level, s.source_type, s.source_id, s.worker_id, count(*) AS n,
                   count(*) FILTER (WHERE s.severity_number >= 17) AS e,
                   max(s."timestamp") AS last
              FROM public.system_logs s
             WHERE s."timestamp" >= $1 AND s."timestamp" < $3 %1$s
             GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT s.log_level, s.source_type, s.source_id, s.worker_id, count(*),
                   count(*) FILTER (WHERE s.severity_number >= 17), max(s."timestamp")
              FROM public.system_logs s
             WHERE s."timestamp" >= $4 AND s."timestamp" < $2 %1$s
             GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT c.log_level, c.source_type, c.source_id, c.worker_id, c.count, c.errors,
                   c.last_seen
              FROM public.system_log_counts c
             WHERE c.resolution = 'minute' AND c.bucket >= $3 AND c.bucket < $5 %2$s
            UNION ALL
            SELECT c.log_level, c.source_type, c.source_id, c.worker_id, c.count, c.errors,
                   c.last_seen
              FROM public.system_log_counts c
             WHERE c.resolution = 'minute' AND c.bucket >= $6 AND c.bucket < $4 %2$s
            UNION ALL
            SELECT c.log_level, c.source_type, c.source_id, c.worker_id, c.count, c.errors,
                   c.last_seen
              FROM public.system_log_counts c
             WHERE c.resolution = 'hour' AND c.bucket >= $5 AND c.bucket < $6 %2$s
          ) AS p
         GROUP BY 1, 2, 3, 4
        $q$, v_raw, v_rollup)
        USING since, until, v_m1, v_m2, v_h1, v_h2, only_source_type, only_worker_id;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_log_counts(timestamptz, timestamptz, text, text, boolean) IS
    'Exact counts of logs in [since, until) per (log_level, source_type, source_id, worker_id), optionally of one source_type and/or worker, or only where errors > 0: rows, rows with severity >= 17 (errors) and the latest "timestamp". Whole hours and minutes from the rollup system_log_counts, partial minutes from system_logs.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_log_message_fingerprint(text)',
        'hub_internal.func_log_rollup_hour_key(timestamptz)',
        'hub_internal.func_log_exception_cause(text)',
        'hub_internal.func_log_rollups_trigger()',
        'hub_internal.func_log_rollups_rebuild(timestamptz, timestamptz)',
        'hub_internal.func_log_counts(timestamptz, timestamptz, text, text, boolean)'
    ]::regprocedure[]);

CREATE OR REPLACE TRIGGER system_logs_rollup
    AFTER INSERT ON public.system_logs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hub_internal.func_log_rollups_trigger();

-- Backfill: logs stored while the rollups were empty (a database upgraded from before
-- them) are counted once. The trigger above already counts everything inserted from
-- now on, and the rebuild's lock makes the two meet exactly. Cheap when there is
-- nothing to do: two index probes.
DO $$
DECLARE
    v_min timestamptz;
    v_max timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.system_log_counts) THEN
        SELECT min("timestamp"), max("timestamp") INTO v_min, v_max FROM public.system_logs;
        IF v_min IS NOT NULL THEN
            PERFORM hub_internal.func_log_rollups_rebuild(v_min, v_max + interval '1 microsecond');
            -- planner statistics now, not at autovacuum's next visit
            ANALYZE public.system_log_counts, public.system_log_error_counts;
        END IF;
    END IF;
END;
$$;
