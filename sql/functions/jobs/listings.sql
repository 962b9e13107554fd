-- sql/functions/jobs/listings.sql
-- What an operator set up and what waits for them, listed: users, approval rules,
-- concurrency limits, approval requests (`orchestrator jobs users|rules|limits|approvals
-- list`). Each returns {rows, more, next}, the shape of func_list_jobs: users and
-- requests are keyset pages (pass next as the after_ argument), rules and limits are
-- few by nature and come whole (more is false). Every read goes through a primary key
-- or a partial index, so a listing does not grow with the job history.

-- A keyset page from the row_limit + 1 rows a listing read: {rows, more, next}, next
-- being the p_key of the page's last row when there are more.
CREATE OR REPLACE FUNCTION hub_internal.func_keyset_page(p_rows jsonb, p_row_limit integer, p_key text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_array_length(p_rows) > p_row_limit
                THEN jsonb_build_object('rows', p_rows - p_row_limit, 'more', true,
                                        'next', p_rows -> (p_row_limit - 1) -> p_key)
                ELSE jsonb_build_object('rows', p_rows, 'more', false, 'next', NULL) END
$$;
COMMENT ON FUNCTION hub_internal.func_keyset_page(jsonb, integer, text) IS
    'Internal: {rows, more, next} from the row_limit + 1 rows a keyset listing read (next = the p_key of the last row kept, when more).';

CREATE OR REPLACE FUNCTION public.func_list_hub_users(
    organization_id text DEFAULT NULL, after_user_id text DEFAULT NULL, row_limit integer DEFAULT 100
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_rows jsonb;
BEGIN
    IF row_limit IS NULL OR row_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'row_limit must be between 1 and 1000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'user_id', x.user_id, 'organization_id', x.organization_id,
               'display_name', x.display_name, 'created_at', x.created_at,
               'updated_at', x.updated_at) ORDER BY x.user_id), '[]'::jsonb)
      INTO v_rows
      FROM (SELECT * FROM public.hub_users u
             WHERE (organization_id IS NULL OR u.organization_id = organization_id)
               AND (after_user_id IS NULL OR u.user_id > after_user_id)
             ORDER BY u.user_id
             LIMIT row_limit + 1) x;
    RETURN hub_internal.func_keyset_page(v_rows, row_limit, 'user_id');
END;
$$;
COMMENT ON FUNCTION public.func_list_hub_users(text, text, integer) IS
    'Users who may submit jobs, by user_id, optionally of one organisation, row_limit (1..1000) per page: {rows: [{user_id, organization_id, display_name, created_at, updated_at}], more, next}; pass next as after_user_id for the following page.';

CREATE OR REPLACE FUNCTION public.func_list_approval_rules()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'rows', coalesce(jsonb_agg(jsonb_build_object(
                    'name', r.name, 'job_type', r.job_type, 'provider', r.provider,
                    'min_estimated_cost', r.min_estimated_cost,
                    'approval_ttl_seconds', r.approval_ttl_seconds,
                    'allow_self_approval', r.allow_self_approval, 'enabled', r.enabled,
                    'updated_at', r.updated_at) ORDER BY r.name), '[]'::jsonb),
        'more', false, 'next', NULL)
      FROM public.approval_rules r
$$;
COMMENT ON FUNCTION public.func_list_approval_rules() IS
    'Every approval rule by name, enabled or not: {rows: [{name, job_type, provider, min_estimated_cost, approval_ttl_seconds, allow_self_approval, enabled, updated_at}], more: false, next: null}. A condition left null is not checked.';

CREATE OR REPLACE FUNCTION public.func_list_concurrency_limits()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'rows', coalesce(jsonb_agg(jsonb_build_object(
                    'scope_type', l.scope_type, 'scope_id', nullif(l.scope_id, ''),
                    'max_running', l.max_running, 'running', l.running,
                    'updated_at', l.updated_at) ORDER BY l.scope_type, l.scope_id), '[]'::jsonb),
        'more', false, 'next', NULL)
      FROM public.concurrency_limits l
$$;
COMMENT ON FUNCTION public.func_list_concurrency_limits() IS
    'Every concurrency limit with its exact running count, by scope: {rows: [{scope_type, scope_id (null for global), max_running, running, updated_at}], more: false, next: null}. A scope without a row is unlimited.';

CREATE OR REPLACE FUNCTION public.func_list_approval_requests(
    status text DEFAULT 'pending', after_request_id uuid DEFAULT NULL, row_limit integer DEFAULT 100
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_rows jsonb;
BEGIN
    IF status IS NOT NULL AND status NOT IN ('pending', 'approved', 'rejected', 'expired', 'cancelled') THEN
        RAISE EXCEPTION 'unknown approval request status %; accepted: pending, approved, rejected, expired, cancelled',
                        quote_literal(status) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF row_limit IS NULL OR row_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'row_limit must be between 1 and 1000, got %', coalesce(row_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'request_id', x.request_id, 'job_id', x.job_id, 'status', x.status,
               'requested_by', x.requested_by, 'job_type', j.job_type, 'provider', j.provider,
               'estimated_cost', j.estimated_cost, 'rule_names', to_jsonb(x.rule_names),
               'allow_self_approval', x.allow_self_approval, 'created_at', x.created_at,
               'expires_at', x.expires_at, 'decided_by', x.decided_by, 'decided_at', x.decided_at)
               ORDER BY x.request_id), '[]'::jsonb)
      INTO v_rows
      FROM (SELECT * FROM public.approval_requests r
             WHERE (status IS NULL OR r.status = status)
               AND (after_request_id IS NULL OR r.request_id > after_request_id)
             ORDER BY r.request_id
             LIMIT row_limit + 1) x
      JOIN public.jobs j ON j.job_id = x.job_id;
    RETURN hub_internal.func_keyset_page(v_rows, row_limit, 'request_id');
END;
$$;
COMMENT ON FUNCTION public.func_list_approval_requests(text, uuid, integer) IS
    'Approval requests, oldest first (ids are UUIDv7), of one status (default pending; null: all), row_limit (1..1000) per page: {rows: [{request_id, job_id, status, requested_by, job_type, provider, estimated_cost, rule_names, allow_self_approval, created_at, expires_at, decided_by, decided_at}], more, next}; pass next as after_request_id. A pending request past expires_at is refused at decision time and expired by func_expire_approvals().';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_keyset_page(jsonb, integer, text)',
        'public.func_list_hub_users(text, text, integer)',
        'public.func_list_approval_rules()',
        'public.func_list_concurrency_limits()',
        'public.func_list_approval_requests(text, uuid, integer)'
    ]::regprocedure[]);
