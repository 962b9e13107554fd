-- sql/functions/logs/queries.sql
-- Reading logs back: one filtered, keyset-paged query and the timelines over it.
-- What the seed got wrong, and what this does instead:
--   * reads were cut silently at the REST gateway's 1,000-row cap -> every read is a
--     page of at most row_limit rows that says whether there is more ("more") and where
--     to continue ("next", a keyset cursor on ("timestamp", id)), so any result can be
--     paged through completely in constant memory, over SQL or REST alike;
--   * the task timeline had a fixed 24-hour window -> it covers the task's whole life
--     (the task index, every partition);
--   * --search was a LIKE pattern -> the text is matched literally (%, _ and \ escaped),
--     case-insensitively; ILIKE lets the trigram index (sql/migrations/0002) serve it
--     where pg_trgm is installed, and elsewhere the time window bounds the scan.
-- The page query is built from fixed fragments (one per filter given) and run with
-- EXECUTE ... USING: values travel as parameters (no injection), and the planner sees
-- them as constants, so partitions outside the time bounds are pruned at plan time and
-- the index of the filter given is chosen; a generic plan of a "($1 IS NULL OR ...)"
-- catch-all could do neither.

-- OpenTelemetry severity of a level name (case and surrounding blanks ignored; WARN and
-- FATAL are the aliases func_insert_logs_batch also accepts).
CREATE OR REPLACE FUNCTION hub_internal.func_log_severity(level text)
RETURNS integer
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    CASE upper(btrim(level))
        WHEN 'DEBUG' THEN RETURN 5;
        WHEN 'INFO' THEN RETURN 9;
        WHEN 'WARNING', 'WARN' THEN RETURN 13;
        WHEN 'ERROR' THEN RETURN 17;
        WHEN 'CRITICAL', 'FATAL' THEN RETURN 21;
        ELSE
            RAISE EXCEPTION 'unknown log level %; accepted: DEBUG, INFO, WARNING, ERROR, CRITICAL',
                quote_literal(left(level, 40))
                USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_log_severity(text) IS
    'Severity number of a level name: DEBUG 5, INFO 9, WARNING (WARN) 13, ERROR 17, CRITICAL (FATAL) 21, in any case. Raises invalid_parameter_value for anything else.';

-- The levels of a JSON array of level names as severity numbers (NULL for NULL, an
-- empty array or JSON null). IMMUTABLE: with a constant argument the planner computes
-- it while planning, so "severity_number = ANY (...)" can prove the errors index's
-- predicate. Raises for anything but an array of known level names.
CREATE OR REPLACE FUNCTION hub_internal.func_log_severities(levels jsonb)
RETURNS integer[]
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_result integer[];
BEGIN
    IF jsonb_typeof(levels) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(levels) <> 'array'
       OR jsonb_path_exists(levels, 'strict $[*] ? (@.type() != "string")') THEN
        RAISE EXCEPTION 'levels must be a JSON array of level names, such as ["ERROR", "CRITICAL"]'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT hub_internal.func_log_severity(l) ORDER BY hub_internal.func_log_severity(l))
      INTO v_result
      FROM jsonb_array_elements_text(levels) AS l;
    RETURN v_result;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_log_severities(jsonb) IS
    'Severity numbers of a JSON array of level names (["ERROR", "critical"] -> {17,21}); NULL for an empty array or JSON null. Raises invalid_parameter_value for anything else.';

-- LIKE's own metacharacters escaped (backslash is LIKE's default escape character) and
-- the text wrapped in %...%, so "100%" finds "100%" and "a_b" does not find "axb".
-- IMMUTABLE for the same reason as above: the planner sees the finished pattern and can
-- use the trigram index.
CREATE OR REPLACE FUNCTION hub_internal.func_like_literal(search text)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
RETURN '%' || replace(replace(replace(search, '\', '\\'), '%', '\%'), '_', '\_') || '%';
COMMENT ON FUNCTION hub_internal.func_like_literal(text) IS
    'A LIKE/ILIKE pattern that matches the text literally anywhere in a value: %, _ and \ escaped, wrapped in %...%.';

-- Resolves a log id to its keyset cursor {"timestamp", "id"} (NULL when not found), so a
-- user can continue after a row knowing only its id. Hub ids are UUIDv7, whose first 48
-- bits are the record's Unix milliseconds: that millisecond is looked up through the
-- primary key first. Any other id is searched for in [since, until), the window the
-- caller is reading anyway.
CREATE OR REPLACE FUNCTION public.func_log_cursor(
    log_id uuid,
    since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    v_ms timestamptz;
    v_found timestamptz;
BEGIN
    IF log_id IS NULL THEN
        RAISE EXCEPTION 'log_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF substr(log_id::text, 15, 1) = '7' THEN
        v_ms := to_timestamp(('x' || lpad(replace(substr(log_id::text, 1, 13), '-', ''), 16, '0'))::bit(64)::bigint / 1000.0);
        EXECUTE 'SELECT "timestamp" FROM public.system_logs WHERE "timestamp" >= $1 AND "timestamp" < $2 AND id = $3'
            INTO v_found USING v_ms - interval '1 millisecond', v_ms + interval '2 milliseconds', log_id;
    END IF;
    IF v_found IS NULL THEN
        EXECUTE 'SELECT "timestamp" FROM public.system_logs WHERE id = $1'
             || CASE WHEN since IS NOT NULL THEN ' AND "timestamp" >= $2' ELSE '' END
             || CASE WHEN until IS NOT NULL THEN ' AND "timestamp" < $3' ELSE '' END
             || ' LIMIT 1'
            INTO v_found USING log_id, since, until;
    END IF;
    RETURN CASE WHEN v_found IS NULL THEN NULL
                ELSE jsonb_build_object('timestamp', v_found, 'id', log_id) END;
END;
$$;
COMMENT ON FUNCTION public.func_log_cursor(uuid, timestamptz, timestamptz) IS
    'The keyset cursor {timestamp, id} of the log row with this id, or NULL. UUIDv7 ids are found through the primary key by the time they encode; other ids are searched for in [since, until) (NULL bounds: unbounded).';

-- The statement func_query_logs runs for a given set of filters: only the conditions of
-- the filters given (their values are never spliced in; NULL ones leave no condition),
-- over the parameters
--   $1 since, $2 until (timestamptz), $3 min_level (text), $4 levels (jsonb),
--   $5 source_type, $6 source_id, $7 worker_id (text), $8 task_id (uuid),
--   $9 cycle_number (integer), $10 search (text), $11 after_timestamp (timestamptz),
--   $12 after_id (uuid), $13 rows to fetch (integer), $14 ids to leave out (uuid[]),
-- returning one row (page json, rows fetched, the page's last timestamp and id). Kept apart so that a benchmark or a person can
-- EXPLAIN exactly what runs (PREPARE ... AS <this text>; EXPLAIN EXECUTE ...).
CREATE OR REPLACE FUNCTION hub_internal.func_query_logs_statement(
    since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL,
    min_level text DEFAULT NULL,
    levels jsonb DEFAULT NULL,
    source_type text DEFAULT NULL,
    source_id text DEFAULT NULL,
    worker_id text DEFAULT NULL,
    task_id uuid DEFAULT NULL,
    cycle_number integer DEFAULT NULL,
    search text DEFAULT NULL,
    after_timestamp timestamptz DEFAULT NULL,
    after_id uuid DEFAULT NULL,
    newest_first boolean DEFAULT false,
    except_ids jsonb DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_where text[] := ARRAY['true'];
    v_dir text := CASE WHEN newest_first THEN 'DESC' ELSE 'ASC' END;
BEGIN
    IF since IS NOT NULL THEN v_where := array_append(v_where, '"timestamp" >= $1'); END IF;
    IF until IS NOT NULL THEN v_where := array_append(v_where, '"timestamp" < $2'); END IF;
    IF min_level IS NOT NULL THEN
        v_where := array_append(v_where, 'severity_number >= hub_internal.func_log_severity($3)');
    END IF;
    IF hub_internal.func_log_severities(levels) IS NOT NULL THEN
        v_where := array_append(v_where, 'severity_number = ANY (hub_internal.func_log_severities($4))');
    END IF;
    IF source_type IS NOT NULL THEN v_where := array_append(v_where, 'source_type = $5'); END IF;
    IF source_id IS NOT NULL THEN v_where := array_append(v_where, 'source_id = $6'); END IF;
    IF worker_id IS NOT NULL THEN v_where := array_append(v_where, 'worker_id = $7'); END IF;
    IF task_id IS NOT NULL THEN v_where := array_append(v_where, 'task_id = $8'); END IF;
    IF cycle_number IS NOT NULL THEN v_where := array_append(v_where, 'cycle_number = $9'); END IF;
    IF nullif(search, '') IS NOT NULL THEN
        v_where := array_append(v_where, 'message ILIKE hub_internal.func_like_literal($10)');
    END IF;
    IF except_ids IS NOT NULL THEN v_where := array_append(v_where, 'NOT (id = ANY ($14))'); END IF;
    IF after_timestamp IS NOT NULL THEN
        -- The plain time bound lets the planner prune partitions and start the index
        -- scan at the cursor; the row comparison then breaks ties on id.
        IF newest_first THEN
            v_where := v_where || ARRAY['"timestamp" <= $11',
                CASE WHEN after_id IS NULL THEN '"timestamp" < $11' ELSE '("timestamp", id) < ($11, $12)' END];
        ELSE
            v_where := v_where || ARRAY['"timestamp" >= $11',
                CASE WHEN after_id IS NULL THEN '"timestamp" > $11' ELSE '("timestamp", id) > ($11, $12)' END];
        END IF;
    END IF;
    RETURN format(
        -- One row: the page as json (the first $13 - 1 rows), how many rows were
        -- fetched (one more than the page only answers "more"), and the cursor of the
        -- page's last row. json, not jsonb: json_agg writes each row's text once, where
        -- jsonb_agg(to_jsonb(row)) parses and sorts every row into a binary tree only to
        -- print it again (37 ms against 13 ms for a 1,000-row page; bench/RESULTS.md).
        -- A row whose metadata nests deeper than 100 levels (written by hand, or before
        -- ingest cut it) is read with the deeper part as text, so no reader's JSON
        -- decoder has to recurse through it (Python's stops near 1,000).
        'SELECT coalesce(json_agg(p.j ORDER BY p.n) FILTER (WHERE p.n < $13), ''[]''::json),'
        '       count(*)::integer,'
        '       (array_agg(p.ts) FILTER (WHERE p.n = $13 - 1))[1],'
        '       (array_agg(p.id) FILTER (WHERE p.n = $13 - 1))[1]'
        '  FROM (SELECT CASE WHEN pg_column_size(page.metadata) > 700'
        '                     AND jsonb_path_exists(page.metadata, ''strict $.**{100}'')'
        '               THEN (to_jsonb(page) || jsonb_build_object(''metadata'','
        '                     hub_internal.func_jsonb_cut_depth(page.metadata, 100)))::json'
        '               ELSE to_json(page) END AS j,'
        '               page."timestamp" AS ts, page.id,'
        '               row_number() OVER (ORDER BY page."timestamp" %1$s, page.id %1$s) AS n'
        '          FROM (SELECT * FROM public.system_logs WHERE %2$s'
        '                 ORDER BY "timestamp" %1$s, id %1$s LIMIT $13) AS page) AS p',
        v_dir, array_to_string(v_where, ' AND '));
END;
$$;
COMMENT ON FUNCTION hub_internal.func_query_logs_statement(timestamptz, timestamptz, text, jsonb, text, text, text, uuid, integer, text, timestamptz, uuid, boolean, jsonb) IS
    'The SQL text func_query_logs executes for these filters (only NULL-ness and newest_first matter), over parameters $1 since, $2 until, $3 min_level, $4 levels, $5 source_type, $6 source_id, $7 worker_id, $8 task_id, $9 cycle_number, $10 search, $11 after_timestamp, $12 after_id, $13 rows to fetch, $14 ids to leave out (uuid[]). For EXPLAIN.';

-- The page query. Filters are ANDed; a NULL filter is not applied. Rows come ordered by
-- ("timestamp", id), oldest first unless newest_first; after_timestamp/after_id continue
-- strictly after that row in the order of the page. Returns
--   {"rows": [row, ...], "more": bool, "next": {"timestamp", "id"} | null}
-- where each row carries every system_logs column, "more" says whether rows beyond this
-- page matched, and "next" (set when more) is the cursor to pass for the next page.
-- row_limit + 1 rows are fetched: the extra one only answers "more". except_ids (a JSON
-- array of ids) leaves those rows out: a live tail re-reads the last seconds before the
-- newest row it showed, to catch rows that arrived late, and passes the ids it showed
-- there, so only the rows it has not shown are built and sent.
CREATE OR REPLACE FUNCTION public.func_query_logs(
    since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL,
    min_level text DEFAULT NULL,
    levels jsonb DEFAULT NULL,
    source_type text DEFAULT NULL,
    source_id text DEFAULT NULL,
    worker_id text DEFAULT NULL,
    task_id uuid DEFAULT NULL,
    cycle_number integer DEFAULT NULL,
    search text DEFAULT NULL,
    after_timestamp timestamptz DEFAULT NULL,
    after_id uuid DEFAULT NULL,
    newest_first boolean DEFAULT false,
    row_limit integer DEFAULT 100,
    except_ids jsonb DEFAULT NULL
) RETURNS json
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    v_rows json;
    v_fetched integer;
    v_last_timestamp timestamptz;
    v_last_id uuid;
    v_except uuid[];
BEGIN
    IF row_limit IS NULL OR row_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'row_limit must be between 1 and 10000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF after_id IS NOT NULL AND after_timestamp IS NULL THEN
        RAISE EXCEPTION 'after_id needs after_timestamp (the cursor is the pair); resolve an id with func_log_cursor()'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM hub_internal.func_log_severity(min_level);  -- unknown names fail here, clearly
    IF except_ids IS NOT NULL AND jsonb_typeof(except_ids) <> 'null' THEN
        IF jsonb_typeof(except_ids) <> 'array' OR jsonb_array_length(except_ids) > 100000
           OR jsonb_path_exists(except_ids, 'strict $[*] ? (@.type() != "string")') THEN
            RAISE EXCEPTION 'except_ids must be a JSON array of at most 100000 log ids'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        BEGIN
            v_except := ARRAY(SELECT jsonb_array_elements_text(except_ids)::uuid);
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'except_ids must hold log ids (UUIDs)' USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;

    EXECUTE hub_internal.func_query_logs_statement(
            since, until, min_level, levels, source_type, source_id, worker_id, task_id,
            cycle_number, search, after_timestamp, after_id, newest_first,
            CASE WHEN v_except IS NOT NULL THEN except_ids END)
        INTO v_rows, v_fetched, v_last_timestamp, v_last_id
        USING since, until, min_level, levels, source_type, source_id, worker_id, task_id,
              cycle_number, search, after_timestamp, after_id, row_limit + 1, v_except;

    RETURN json_build_object(
        'rows', v_rows,
        'more', v_fetched > row_limit,
        'next', CASE WHEN v_fetched > row_limit
                     THEN json_build_object('timestamp', v_last_timestamp, 'id', v_last_id) END);
END;
$$;
COMMENT ON FUNCTION public.func_query_logs(timestamptz, timestamptz, text, jsonb, text, text, text, uuid, integer, text, timestamptz, uuid, boolean, integer, jsonb) IS
    'One page of logs matching every filter given (NULL = not applied): [since, until), min_level (severity at or above), levels (JSON array of exact levels), source_type, source_id, worker_id, task_id, cycle_number, search (literal, case-insensitive substring of message). Ordered by ("timestamp", id), oldest first unless newest_first; after_timestamp + after_id continue strictly after that row; except_ids (JSON array of ids) leaves those rows out (a live tail''s rows already shown). Returns {rows: [every system_logs column], more, next: {timestamp, id} | null}; row_limit 1..10000.';

-- A task's whole life, oldest first, in pages: no time window, so a task that ran for
-- days is read completely (the task index serves every partition).
CREATE OR REPLACE FUNCTION public.func_task_timeline(
    task_id uuid,
    after_timestamp timestamptz DEFAULT NULL,
    after_id uuid DEFAULT NULL,
    row_limit integer DEFAULT 1000
) RETURNS json
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF task_id IS NULL THEN
        RAISE EXCEPTION 'task_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN public.func_query_logs(task_id => task_id, after_timestamp => after_timestamp,
                                  after_id => after_id, row_limit => row_limit);
END;
$$;
COMMENT ON FUNCTION public.func_task_timeline(uuid, timestamptz, uuid, integer) IS
    'Every log of one task over its whole life, oldest first, as pages of func_query_logs: {rows, more, next}. Continue with after_timestamp/after_id = next.';

-- One worker's logs in [since, until), oldest first, in pages.
CREATE OR REPLACE FUNCTION public.func_worker_timeline(
    worker_id text,
    since timestamptz,
    until timestamptz DEFAULT NULL,
    after_timestamp timestamptz DEFAULT NULL,
    after_id uuid DEFAULT NULL,
    row_limit integer DEFAULT 1000
) RETURNS json
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF nullif(btrim(worker_id), '') IS NULL THEN
        RAISE EXCEPTION 'worker_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF since IS NULL THEN
        RAISE EXCEPTION 'since is required (the start of the window)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN public.func_query_logs(worker_id => worker_id, since => since, until => until,
                                  after_timestamp => after_timestamp, after_id => after_id,
                                  row_limit => row_limit);
END;
$$;
COMMENT ON FUNCTION public.func_worker_timeline(text, timestamptz, timestamptz, timestamptz, uuid, integer) IS
    'One worker''s logs in [since, until) (until NULL = now and later), oldest first, as pages of func_query_logs: {rows, more, next}.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_log_severity(text)',
        'hub_internal.func_log_severities(jsonb)',
        'hub_internal.func_like_literal(text)',
        'public.func_log_cursor(uuid, timestamptz, timestamptz)',
        'hub_internal.func_query_logs_statement(timestamptz, timestamptz, text, jsonb, text, text, text, uuid, integer, text, timestamptz, uuid, boolean, jsonb)',
        'public.func_query_logs(timestamptz, timestamptz, text, jsonb, text, text, text, uuid, integer, text, timestamptz, uuid, boolean, integer, jsonb)',
        'public.func_task_timeline(uuid, timestamptz, uuid, integer)',
        'public.func_worker_timeline(text, timestamptz, timestamptz, timestamptz, uuid, integer)'
    ]::regprocedure[]);
