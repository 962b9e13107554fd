-- sql/functions/ops/backup.sql
-- Backup and restore (orchestrator/backup/, README "Backup and restore"). The dump holds
-- the hub's rows, never its derived tables: COPY fires the log-rollup statement trigger
-- (logs/rollups.sql), so the rollups are recounted from the rows as they load, and the
-- job counters and concurrency slots are recounted here, in the load's own transaction,
-- before the row counts are checked against the backup's manifest.

-- The last statement of a restore's single transaction: recounts what is derived from the
-- restored rows, then compares every table's row count with the manifest's (taken in the
-- dump's snapshot). A mismatch raises, so the whole restore rolls back and the target is
-- left as it was. Owner only: it rebuilds the job counters (LOCK TABLE ... EXCLUSIVE).
CREATE OR REPLACE FUNCTION hub_internal.func_restore_finish(p_expected jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_table text;
    v_want bigint;
    v_have bigint;
    v_counts jsonb := '{}'::jsonb;
BEGIN
    IF p_expected IS NULL OR jsonb_typeof(p_expected) <> 'object' THEN
        RAISE EXCEPTION 'p_expected must be a JSON object of "schema.table": row count'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM hub_internal.func_job_status_totals_rebuild();
    UPDATE public.concurrency_limits c
       SET running = (SELECT count(*) FROM public.job_queue q
                       WHERE q.status = 'running'
                         AND (c.scope_type = 'global'
                              OR (c.scope_type = 'organization' AND q.organization_id = c.scope_id)
                              OR (c.scope_type = 'user' AND q.user_id = c.scope_id))),
           updated_at = now();
    FOR v_table, v_want IN SELECT e.key, (e.value)::bigint FROM jsonb_each_text(p_expected) AS e ORDER BY 1 LOOP
        IF to_regclass(v_table) IS NULL THEN
            RAISE EXCEPTION 'the backup holds table % which this database does not have', v_table
                USING ERRCODE = 'undefined_table';
        END IF;
        EXECUTE format('SELECT count(*) FROM %s', to_regclass(v_table)) INTO v_have;
        IF v_have <> v_want THEN
            RAISE EXCEPTION 'restored % rows into %, but the backup''s manifest says %; the restore was rolled back',
                v_have, v_table, v_want USING ERRCODE = 'data_exception';
        END IF;
        v_counts := v_counts || jsonb_build_object(v_table, v_have);
    END LOOP;
    RETURN jsonb_build_object('rows', v_counts);
END;
$$;
COMMENT ON FUNCTION hub_internal.func_restore_finish(jsonb) IS
    'Last step of a restore (owner only): rebuilds job_status_totals, recounts concurrency_limits.running, then checks each table''s row count against p_expected {"schema.table": rows} and raises data_exception on the first mismatch. Returns {rows}.';

-- What `orchestrator backup info` and GET /api/database/info show (the seed's
-- get_database_info): the database's size, its server, and per table its size and row
-- estimate from the planner's statistics (exact counts of a big log table would take
-- seconds; a backup's manifest has the exact ones).
CREATE OR REPLACE FUNCTION public.func_database_info()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'database', current_database(),
        'size_bytes', pg_database_size(current_database()),
        'server_version', current_setting('server_version'),
        'server_version_num', current_setting('server_version_num')::integer,
        'tables', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'table', n.nspname || '.' || c.relname,
                       'rows_estimate', CASE WHEN c.relkind = 'p' THEN
                               (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)::bigint
                                  FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid
                                 WHERE t.isleaf)
                           ELSE greatest(c.reltuples, 0)::bigint END,
                       'size_bytes', CASE WHEN c.relkind = 'p' THEN
                               (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::bigint
                                  FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
                           ELSE pg_total_relation_size(c.oid) END)
                   ORDER BY n.nspname, c.relname)
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('public', 'hub_internal') AND c.relkind IN ('r', 'p')
               AND NOT c.relispartition), '[]'::jsonb));
$$;
COMMENT ON FUNCTION public.func_database_info() IS
    'The hub database at a glance: {database, size_bytes, server_version, server_version_num, tables: [{table, rows_estimate, size_bytes}]} (row counts are planner estimates; partitions summed into their table).';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_restore_finish(jsonb)',
        'public.func_database_info()'
    ]::regprocedure[]);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        REVOKE ALL ON FUNCTION hub_internal.func_restore_finish(jsonb) FROM service_role;
    END IF;
END;
$$;
