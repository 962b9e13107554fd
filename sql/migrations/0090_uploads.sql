-- 0090_uploads.sql
-- The S3-compatible upload endpoint's shared state (sql/functions/storage/uploads.sql;
-- the files themselves live under ORCHESTRATOR_STORAGE_DIR). What the seed got wrong,
-- and what this does instead:
--   * one upload token could write any key, and it was stored in clear -> each job gets
--     its own access key id; the secret is HMAC-SHA256(signing key, access key id),
--     computed when needed and never stored, and the key is confined to the job's prefix;
--   * the token outlived the job -> every request checks the job's state in the DB;
--   * upload progress lived in one process's memory -> job_artifacts and
--     multipart_uploads are rows every instance sees.

-- The signing key: 32 bytes from the server's strong random source (gen_random_uuid is
-- pg_strong_random, 122 random bits each), made once here. Only the SECURITY DEFINER
-- functions of sql/functions/storage/uploads.sql read it: no role, service_role
-- included, may select it, so it never leaves the database; what leaves is a derived
-- per-job secret.
CREATE TABLE IF NOT EXISTS hub_internal.upload_signing_key (
    id         smallint    PRIMARY KEY CHECK (id = 1),
    key        bytea       NOT NULL CHECK (octet_length(key) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE hub_internal.upload_signing_key IS
    'The one key job upload secrets are derived from (secret = base64url(HMAC-SHA256(key, access_key_id))[:40]); readable only by the storage functions (SECURITY DEFINER). Replacing it invalidates every issued secret.';
INSERT INTO hub_internal.upload_signing_key (id, key)
SELECT 1, uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
ON CONFLICT (id) DO NOTHING;
ALTER TABLE hub_internal.upload_signing_key ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON hub_internal.upload_signing_key FROM PUBLIC;
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON hub_internal.upload_signing_key FROM %I', v_role);
        END IF;
    END LOOP;
END;
$$;

CREATE TABLE IF NOT EXISTS public.upload_credentials (
    access_key_id text        PRIMARY KEY CHECK (access_key_id ~ '^OH[A-Z2-7]{18}$'),
    job_id        uuid        NOT NULL REFERENCES public.jobs (job_id) ON DELETE CASCADE,
    bucket        text        NOT NULL CHECK (bucket ~ '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS upload_credentials_job_idx ON public.upload_credentials (job_id);
COMMENT ON TABLE public.upload_credentials IS
    'One S3 access key id per job and bucket (func_issue_upload_credential, idempotent); the secret is derived from hub_internal.upload_signing_key, never stored. Valid while the job is queued or running, not revoked and not past expires_at (func_check_upload_credential).';

CREATE TABLE IF NOT EXISTS public.job_artifacts (
    bucket        text        NOT NULL,
    key           text        COLLATE "C" NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 1024),
    job_id        uuid        NOT NULL,
    size_bytes    bigint      NOT NULL CHECK (size_bytes >= 0),
    etag          text        NOT NULL,
    content_type  text,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    access_key_id text,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX IF NOT EXISTS job_artifacts_job_idx ON public.job_artifacts (job_id);
COMMENT ON TABLE public.job_artifacts IS
    'Every stored object (its file is {storage_dir}/{bucket}/{key}; keys in byte order, COLLATE "C", as S3 lists them): the index ListObjectsV2 pages through and the source of upload progress. job_id has no foreign key on purpose: pruning a job''s history leaves its files and their index.';

CREATE TABLE IF NOT EXISTS public.multipart_uploads (
    upload_id     text        PRIMARY KEY CHECK (upload_id ~ '^[A-Za-z0-9_-]{16,64}$'),
    job_id        uuid        NOT NULL,
    bucket        text        NOT NULL,
    key           text        NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 1024),
    access_key_id text,
    content_type  text,
    parts         jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(parts) = 'object'),
    bytes         bigint      NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS multipart_uploads_job_idx ON public.multipart_uploads (job_id);
COMMENT ON TABLE public.multipart_uploads IS
    'Multipart uploads in progress: parts = {"<number>": {"etag", "size"}} as they arrive (in any order); the row goes when the upload completes or is aborted.';

SELECT hub_internal.func_hub_secure(
    p_tables => ARRAY['public.upload_credentials', 'public.job_artifacts', 'public.multipart_uploads']::regclass[]);
SELECT hub_internal.func_hub_service_role_policy(t)
  FROM unnest(ARRAY['public.upload_credentials', 'public.job_artifacts', 'public.multipart_uploads']::regclass[]) AS t;
