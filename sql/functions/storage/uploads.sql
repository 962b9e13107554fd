-- sql/functions/storage/uploads.sql
-- The S3-compatible upload endpoint's rules (tables in sql/migrations/0090): job
-- credentials (issued, checked against the job's state on every request), the object
-- index ListObjectsV2 pages through, multipart uploads in progress, and the progress a
-- job read shows. The HTTP layer (orchestrator/server/storage/) verifies signatures and
-- moves bytes; it decides nothing these functions decide.

CREATE OR REPLACE FUNCTION hub_internal.func_hmac_sha256(p_key bytea, p_message bytea)
RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key bytea := p_key;
    v_inner bytea;
    v_outer bytea;
BEGIN
    -- RFC 2104 with the core sha256(): pgcrypto's hmac() is not installed everywhere
    -- (and lives in another schema on Supabase).
    IF octet_length(v_key) > 64 THEN
        v_key := sha256(v_key);
    END IF;
    v_key := v_key || decode(repeat('00', 64 - octet_length(v_key)), 'hex');
    v_inner := v_key;
    v_outer := v_key;
    FOR i IN 0..63 LOOP
        v_inner := set_byte(v_inner, i, get_byte(v_key, i) # 54);   -- 0x36
        v_outer := set_byte(v_outer, i, get_byte(v_key, i) # 92);   -- 0x5c
    END LOOP;
    RETURN sha256(v_outer || sha256(v_inner || p_message));
END;
$$;
COMMENT ON FUNCTION hub_internal.func_hmac_sha256(bytea, bytea) IS
    'Internal: HMAC-SHA256 (RFC 2104) on the core sha256(), so no extension is needed.';

CREATE OR REPLACE FUNCTION hub_internal.func_upload_secret(p_access_key_id text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT left(translate(encode(hub_internal.func_hmac_sha256(k.key, convert_to(p_access_key_id, 'UTF8')), 'base64'),
                          '+/', '-_'), 40)
      FROM hub_internal.upload_signing_key k
     WHERE k.id = 1
$$;
COMMENT ON FUNCTION hub_internal.func_upload_secret(text) IS
    'Internal: the secret access key of an access key id, base64url(HMAC-SHA256(signing key, id))[:40]; derived on demand, never stored. Callable only by the owner (through the SECURITY DEFINER functions below).';

CREATE OR REPLACE FUNCTION hub_internal.func_upload_credential_state(p_job_status text, p_expires_at timestamptz, p_revoked_at timestamptz)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_job_status IS NULL THEN 'the job no longer exists'
        WHEN p_job_status NOT IN ('queued', 'running') THEN 'the job is ' || p_job_status
        WHEN p_revoked_at IS NOT NULL THEN 'the credential was revoked'
        WHEN p_expires_at <= now() THEN 'the credential expired at ' || p_expires_at::text
    END
$$;
COMMENT ON FUNCTION hub_internal.func_upload_credential_state(text, timestamptz, timestamptz) IS
    'Internal: why a credential no longer works (null while it does): the job ended, it was revoked, or it expired.';

CREATE OR REPLACE FUNCTION public.func_issue_upload_credential(job_id uuid, bucket text DEFAULT 'outputs', ttl_seconds integer DEFAULT 604800)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER  -- derives the secret from hub_internal.upload_signing_key, which no caller may read
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_status text;
    v_cred public.upload_credentials%ROWTYPE;
    v_random bytea;
    v_id text := 'OH';
BEGIN
    IF bucket IS NULL OR bucket !~ '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' THEN
        RAISE EXCEPTION 'invalid bucket name %; accepted: 3-63 characters of a-z, 0-9, ".", "-", starting and ending with a letter or digit',
            coalesce(quote_literal(left(bucket, 80)), 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ttl_seconds IS NULL OR ttl_seconds NOT BETWEEN 60 AND 31 * 86400 THEN
        RAISE EXCEPTION 'ttl_seconds must be between 60 and 2678400 (31 days), got %', coalesce(ttl_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT j.status INTO v_status FROM public.jobs j WHERE j.job_id = job_id;
    IF v_status IS NULL THEN
        RAISE EXCEPTION 'unknown job %', coalesce(job_id::text, 'NULL') USING ERRCODE = 'P0001';
    END IF;
    IF v_status NOT IN ('queued', 'running') THEN
        RAISE EXCEPTION 'job % is %: upload credentials are issued only to queued or running jobs', job_id, v_status
            USING ERRCODE = 'P0001';
    END IF;
    -- One active credential per job and bucket: a retried dispatch gets the same one.
    SELECT * INTO v_cred FROM public.upload_credentials c
     WHERE c.job_id = job_id AND c.bucket = bucket AND c.revoked_at IS NULL AND c.expires_at > now()
     ORDER BY c.issued_at DESC LIMIT 1;
    IF NOT FOUND THEN
        v_random := uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid());
        FOR i IN 0..17 LOOP
            v_id := v_id || substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', get_byte(v_random, i) % 32 + 1, 1);
        END LOOP;
        INSERT INTO public.upload_credentials AS c (access_key_id, job_id, bucket, expires_at)
        VALUES (v_id, job_id, bucket, now() + make_interval(secs => ttl_seconds))
        RETURNING * INTO v_cred;
    END IF;
    RETURN jsonb_build_object(
        'access_key_id', v_cred.access_key_id,
        'secret_access_key', hub_internal.func_upload_secret(v_cred.access_key_id),
        'job_id', v_cred.job_id, 'bucket', v_cred.bucket, 'prefix', v_cred.job_id::text || '/',
        'expires_at', v_cred.expires_at);
END;
$$;
COMMENT ON FUNCTION public.func_issue_upload_credential(uuid, text, integer) IS
    'S3 credentials for a queued or running job (idempotent: its active credential for the bucket, else a new one): {access_key_id, secret_access_key, job_id, bucket, prefix, expires_at}. The secret is derived, never stored; it works only under {bucket}/{job_id}/ and only while the job is queued or running. Unknown or ended job: P0001.';

CREATE OR REPLACE FUNCTION public.func_check_upload_credential(access_key_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER  -- derives the secret to verify a signature with
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_cred public.upload_credentials%ROWTYPE;
    v_status text;
    v_reason text;
BEGIN
    SELECT * INTO v_cred FROM public.upload_credentials c WHERE c.access_key_id = access_key_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('found', false);
    END IF;
    SELECT j.status INTO v_status FROM public.jobs j WHERE j.job_id = v_cred.job_id;
    v_reason := hub_internal.func_upload_credential_state(v_status, v_cred.expires_at, v_cred.revoked_at);
    RETURN jsonb_build_object(
        'found', true, 'access_key_id', v_cred.access_key_id, 'job_id', v_cred.job_id,
        'bucket', v_cred.bucket, 'prefix', v_cred.job_id::text || '/', 'job_status', v_status,
        'active', v_reason IS NULL, 'reason', v_reason, 'expires_at', v_cred.expires_at,
        'secret_access_key', hub_internal.func_upload_secret(v_cred.access_key_id));
END;
$$;
COMMENT ON FUNCTION public.func_check_upload_credential(text) IS
    'What the endpoint needs to authenticate a request signed with access_key_id: {found, job_id, bucket, prefix, job_status, active, reason, expires_at, secret_access_key}; active is false (with the reason) once the job is no longer queued or running, or the credential was revoked or expired. Unknown id: {found: false}.';

CREATE OR REPLACE FUNCTION public.func_revoke_upload_credentials(job_id uuid)
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH revoked AS (
        UPDATE public.upload_credentials c SET revoked_at = now()
         WHERE c.job_id = func_revoke_upload_credentials.job_id AND c.revoked_at IS NULL
        RETURNING 1)
    SELECT jsonb_build_object('revoked', count(*)) FROM revoked
$$;
COMMENT ON FUNCTION public.func_revoke_upload_credentials(uuid) IS
    'Revokes every upload credential of a job at once (they also stop working when the job ends): {revoked: n}.';

CREATE OR REPLACE FUNCTION public.func_record_artifact(
    bucket text, key text, job_id uuid, size_bytes bigint, etag text, content_type text DEFAULT NULL,
    access_key_id text DEFAULT NULL, upload_id text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    INSERT INTO public.job_artifacts AS a (bucket, key, job_id, size_bytes, etag, content_type, uploaded_at, access_key_id)
    VALUES (bucket, key, job_id, size_bytes, etag, content_type, now(), access_key_id)
    ON CONFLICT ON CONSTRAINT job_artifacts_pkey DO UPDATE
       SET job_id = EXCLUDED.job_id, size_bytes = EXCLUDED.size_bytes, etag = EXCLUDED.etag,
           content_type = EXCLUDED.content_type, uploaded_at = EXCLUDED.uploaded_at,
           access_key_id = EXCLUDED.access_key_id;
    IF upload_id IS NOT NULL THEN
        DELETE FROM public.multipart_uploads m WHERE m.upload_id = upload_id;
    END IF;
    RETURN jsonb_build_object('bucket', bucket, 'key', key, 'size_bytes', size_bytes, 'etag', etag);
END;
$$;
COMMENT ON FUNCTION public.func_record_artifact(text, text, uuid, bigint, text, text, text, text) IS
    'Indexes an object once its file is in place (a replaced key is updated); with upload_id, the completed multipart upload''s row goes in the same transaction.';

CREATE OR REPLACE FUNCTION public.func_get_artifact(bucket text, key text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT to_jsonb(a) FROM public.job_artifacts a
     WHERE a.bucket = func_get_artifact.bucket AND a.key = func_get_artifact.key
$$;
COMMENT ON FUNCTION public.func_get_artifact(text, text) IS
    'One object''s index row {bucket, key, job_id, size_bytes, etag, content_type, uploaded_at, access_key_id}, or null.';

CREATE OR REPLACE FUNCTION public.func_delete_artifact(bucket text, key text)
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM public.job_artifacts a
         WHERE a.bucket = func_delete_artifact.bucket AND a.key = func_delete_artifact.key
        RETURNING 1)
    SELECT jsonb_build_object('deleted', EXISTS (SELECT 1 FROM gone))
$$;
COMMENT ON FUNCTION public.func_delete_artifact(text, text) IS
    'Removes an object from the index: {deleted: bool} (the caller removes the file).';

CREATE OR REPLACE FUNCTION public.func_list_artifacts(
    bucket text, prefix text DEFAULT '', delimiter text DEFAULT NULL, after text DEFAULT NULL,
    after_is_prefix boolean DEFAULT false, max_keys integer DEFAULT 1000
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_prefix text := coalesce(prefix, '');
    v_delim text := nullif(delimiter, '');
    v_rows jsonb;
    v_count integer;
BEGIN
    IF max_keys IS NULL OR max_keys NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'max_keys must be between 0 and 1000, got %', coalesce(max_keys::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Entries in byte order: an object, or (with a delimiter) the common prefix that
    -- rolls up every key with the delimiter after the prefix. A page that ended on a
    -- common prefix resumes after every key under it.
    SELECT coalesce(jsonb_agg(e ORDER BY e.name COLLATE "C"), '[]'::jsonb), count(*)
      INTO v_rows, v_count
      FROM (SELECT x.name, x.is_prefix,
                   CASE WHEN NOT x.is_prefix THEN max(x.size_bytes) END AS size_bytes,
                   CASE WHEN NOT x.is_prefix THEN max(x.etag) END AS etag,
                   CASE WHEN NOT x.is_prefix THEN max(x.uploaded_at) END AS uploaded_at
              FROM (SELECT CASE WHEN v_delim IS NOT NULL AND strpos(substr(a.key, length(v_prefix) + 1), v_delim) > 0
                                THEN left(a.key, length(v_prefix) + strpos(substr(a.key, length(v_prefix) + 1), v_delim) + length(v_delim) - 1)
                                ELSE a.key END AS name,
                           v_delim IS NOT NULL AND strpos(substr(a.key, length(v_prefix) + 1), v_delim) > 0 AS is_prefix,
                           a.size_bytes, a.etag, a.uploaded_at
                      FROM public.job_artifacts a
                     WHERE a.bucket = bucket
                       AND a.key >= v_prefix AND starts_with(a.key, v_prefix)
                       AND (after IS NULL OR a.key > after)
                       AND NOT (after_is_prefix AND after IS NOT NULL AND starts_with(a.key, after))
                     ORDER BY a.key
                     LIMIT CASE WHEN v_delim IS NULL THEN max_keys + 1 END) x
             GROUP BY x.name, x.is_prefix
             ORDER BY x.name COLLATE "C"
             LIMIT max_keys + 1) e;
    IF v_count > max_keys THEN
        v_rows := v_rows - max_keys;
    END IF;
    RETURN jsonb_build_object('entries', v_rows, 'truncated', v_count > max_keys);
END;
$$;
COMMENT ON FUNCTION public.func_list_artifacts(text, text, text, text, boolean, integer) IS
    'One ListObjectsV2 page of a bucket: {entries: [{name, is_prefix, size_bytes, etag, uploaded_at}], truncated}, names in byte order after `after` (skipping every key under it when after_is_prefix), keys under prefix, rolled up to common prefixes at delimiter; max_keys 0..1000.';

CREATE OR REPLACE FUNCTION public.func_list_upload_buckets()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('bucket', b.bucket, 'created_at', b.created_at) ORDER BY b.bucket), '[]'::jsonb)
      FROM (SELECT a.bucket, min(a.uploaded_at) AS created_at FROM public.job_artifacts a GROUP BY a.bucket) b
$$;
COMMENT ON FUNCTION public.func_list_upload_buckets() IS
    'Buckets holding at least one object: [{bucket, created_at (first upload)}] (ListBuckets for the admin token).';

CREATE OR REPLACE FUNCTION public.func_start_multipart_upload(
    upload_id text, job_id uuid, bucket text, key text, access_key_id text DEFAULT NULL, content_type text DEFAULT NULL
) RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    INSERT INTO public.multipart_uploads (upload_id, job_id, bucket, key, access_key_id, content_type)
    VALUES (upload_id, job_id, bucket, key, access_key_id, content_type)
    RETURNING to_jsonb(multipart_uploads)
$$;
COMMENT ON FUNCTION public.func_start_multipart_upload(text, uuid, text, text, text, text) IS
    'Records a new multipart upload (CreateMultipartUpload) and returns its row.';

CREATE OR REPLACE FUNCTION public.func_record_upload_part(upload_id text, part_number integer, size_bytes bigint, etag text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_row public.multipart_uploads%ROWTYPE;
    v_old bigint;
BEGIN
    IF part_number IS NULL OR part_number NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'part_number must be between 1 and 10000, got %', coalesce(part_number::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_row FROM public.multipart_uploads m WHERE m.upload_id = upload_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_old := coalesce((v_row.parts -> part_number::text ->> 'size')::bigint, 0);
    UPDATE public.multipart_uploads m
       SET parts = m.parts || jsonb_build_object(part_number::text, jsonb_build_object('etag', etag, 'size', size_bytes)),
           bytes = m.bytes - v_old + size_bytes, updated_at = now()
     WHERE m.upload_id = upload_id
    RETURNING * INTO v_row;
    RETURN to_jsonb(v_row);
END;
$$;
COMMENT ON FUNCTION public.func_record_upload_part(text, integer, bigint, text) IS
    'Records a part that is on disk (parts arrive in any order; a part sent again replaces the earlier one): the upload''s row, or null when no such upload is in progress.';

CREATE OR REPLACE FUNCTION public.func_get_multipart_upload(upload_id text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT to_jsonb(m) FROM public.multipart_uploads m WHERE m.upload_id = func_get_multipart_upload.upload_id
$$;
COMMENT ON FUNCTION public.func_get_multipart_upload(text) IS
    'A multipart upload in progress with its parts, or null (completed, aborted or unknown).';

CREATE OR REPLACE FUNCTION public.func_end_multipart_upload(upload_id text)
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM public.multipart_uploads m WHERE m.upload_id = func_end_multipart_upload.upload_id
        RETURNING 1)
    SELECT jsonb_build_object('ended', EXISTS (SELECT 1 FROM gone))
$$;
COMMENT ON FUNCTION public.func_end_multipart_upload(text) IS
    'Forgets an aborted multipart upload: {ended: bool} (the caller removes its part files).';

CREATE OR REPLACE FUNCTION public.func_touch_multipart_upload(upload_id text)
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
    UPDATE public.multipart_uploads m SET updated_at = now()
     WHERE m.upload_id = func_touch_multipart_upload.upload_id
    RETURNING to_jsonb(m)
$$;
COMMENT ON FUNCTION public.func_touch_multipart_upload(text) IS
    'A multipart upload in progress, its last activity (updated_at) set to now, or null: called when an UploadPart or CompleteMultipartUpload begins, so func_expire_multipart_uploads leaves an upload that is being written alone.';

CREATE OR REPLACE FUNCTION public.func_expire_multipart_uploads(
    max_age_hours integer DEFAULT 168, grace_minutes integer DEFAULT 60, max_count integer DEFAULT 1000
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_rows jsonb;
BEGIN
    IF max_age_hours IS NULL OR max_age_hours NOT BETWEEN 1 AND 87600 THEN
        RAISE EXCEPTION 'max_age_hours must be between 1 and 87600 (10 years), got %', coalesce(max_age_hours::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF grace_minutes IS NULL OR grace_minutes NOT BETWEEN 0 AND 10080 THEN
        RAISE EXCEPTION 'grace_minutes must be between 0 and 10080 (7 days), got %', coalesce(grace_minutes::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_count IS NULL OR max_count NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'max_count must be between 1 and 100000, got %', coalesce(max_count::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- An upload goes when it was started more than max_age_hours ago, or its job ended
    -- (or was pruned) more than grace_minutes ago; in both cases only once it has been
    -- quiet for grace_minutes (an UploadPart or Complete touches updated_at when it
    -- begins), so a part streaming right now is not taken from under its writer. Rows
    -- another session holds (a part being recorded) are skipped until the next run.
    WITH due AS (
        SELECT m.upload_id,
               CASE WHEN j.job_id IS NULL THEN 'job gone'
                    WHEN j.status IN ('completed', 'failed', 'cancelled')
                         AND coalesce(j.finished_at, m.updated_at) < now() - make_interval(mins => grace_minutes)
                    THEN 'job ' || j.status
                    WHEN m.started_at < now() - make_interval(hours => max_age_hours) THEN 'expired' END AS reason
          FROM public.multipart_uploads m
          LEFT JOIN public.jobs j ON j.job_id = m.job_id
         WHERE m.updated_at < now() - make_interval(mins => grace_minutes)
         ORDER BY m.started_at
    ), picked AS (
        SELECT m.upload_id, d.reason
          FROM public.multipart_uploads m JOIN due d ON d.upload_id = m.upload_id
         WHERE d.reason IS NOT NULL
         ORDER BY m.started_at
         LIMIT max_count
           FOR UPDATE OF m SKIP LOCKED
    ), gone AS (
        DELETE FROM public.multipart_uploads m USING picked p
         WHERE m.upload_id = p.upload_id
        RETURNING m.upload_id, m.job_id, m.bucket, m.key, m.bytes, m.started_at, m.updated_at, p.reason
    )
    SELECT coalesce(jsonb_agg(to_jsonb(g) ORDER BY g.started_at), '[]'::jsonb) INTO v_rows FROM gone g;
    RETURN jsonb_build_object('expired', v_rows, 'count', jsonb_array_length(v_rows));
END;
$$;
COMMENT ON FUNCTION public.func_expire_multipart_uploads(integer, integer, integer) IS
    'Forgets (deletes) at most max_count multipart uploads never completed nor aborted: started more than max_age_hours ago, or whose job ended (or was pruned) more than grace_minutes ago, and quiet (no part begun) for grace_minutes; returns them, {expired: [{upload_id, job_id, bucket, key, bytes, started_at, updated_at, reason}], count}, so the caller removes their part directories. Rows locked by a writer are skipped.';

CREATE OR REPLACE FUNCTION public.func_upload_progress(job_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT jsonb_build_object(
        'objects', (SELECT count(*) FROM public.job_artifacts a WHERE a.job_id = func_upload_progress.job_id),
        'bytes', (SELECT coalesce(sum(a.size_bytes), 0) FROM public.job_artifacts a WHERE a.job_id = func_upload_progress.job_id),
        'last_upload_at', (SELECT max(a.uploaded_at) FROM public.job_artifacts a WHERE a.job_id = func_upload_progress.job_id),
        'in_progress', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                  'key', m.key, 'upload_id', m.upload_id, 'parts', (SELECT count(*) FROM jsonb_object_keys(m.parts)),
                                  'bytes', m.bytes, 'started_at', m.started_at, 'updated_at', m.updated_at) ORDER BY m.started_at), '[]'::jsonb)
                          FROM public.multipart_uploads m WHERE m.job_id = func_upload_progress.job_id))
$$;
COMMENT ON FUNCTION public.func_upload_progress(uuid) IS
    'A job''s uploads: {objects, bytes, last_upload_at, in_progress: [{key, upload_id, parts, bytes, started_at, updated_at}]} (multipart uploads not yet completed). Part of func_get_job as upload_progress.';

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY[
        'hub_internal.func_hmac_sha256(bytea, bytea)',
        'hub_internal.func_upload_secret(text)',
        'hub_internal.func_upload_credential_state(text, timestamptz, timestamptz)',
        'public.func_issue_upload_credential(uuid, text, integer)',
        'public.func_check_upload_credential(text)',
        'public.func_revoke_upload_credentials(uuid)',
        'public.func_record_artifact(text, text, uuid, bigint, text, text, text, text)',
        'public.func_get_artifact(text, text)',
        'public.func_delete_artifact(text, text)',
        'public.func_list_artifacts(text, text, text, text, boolean, integer)',
        'public.func_list_upload_buckets()',
        'public.func_start_multipart_upload(text, uuid, text, text, text, text)',
        'public.func_record_upload_part(text, integer, bigint, text)',
        'public.func_get_multipart_upload(text)',
        'public.func_end_multipart_upload(text)',
        'public.func_touch_multipart_upload(text)',
        'public.func_expire_multipart_uploads(integer, integer, integer)',
        'public.func_upload_progress(uuid)'
    ]::regprocedure[]);
-- The key's readers are the owner's alone; service_role reaches them only through the
-- two SECURITY DEFINER functions above.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        REVOKE ALL ON FUNCTION hub_internal.func_upload_secret(text) FROM service_role;
        REVOKE ALL ON FUNCTION hub_internal.func_hmac_sha256(bytea, bytea) FROM service_role;
    END IF;
END;
$$;
