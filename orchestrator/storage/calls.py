"""The upload store's operations as :class:`~orchestrator.db.calls.Call` values.

Each returns the SQL function's ``jsonb`` answer as plain Python (a dict, a list, or
None where the function says null): the S3 endpoint reads a few fields, the job read
hands progress on as it is, so the SQL function is the one definition of each shape.
"""

from __future__ import annotations

from typing import Any

from orchestrator.db.calls import Call

DEFAULT_BUCKET = "outputs"
DEFAULT_TTL_SECONDS = 7 * 86_400


def _same(raw: Any) -> Any:
    return raw


def issue_upload_credential(
    job_id: str, bucket: str = DEFAULT_BUCKET, ttl_seconds: int = DEFAULT_TTL_SECONDS
) -> Call[dict[str, Any]]:
    """The job's S3 credentials (idempotent while the job is queued or running)."""
    return Call(
        "func_issue_upload_credential",
        {"job_id": job_id, "bucket": bucket, "ttl_seconds": ttl_seconds},
        _same,
    )


def check_upload_credential(access_key_id: str) -> Call[dict[str, Any]]:
    """What authenticating a request signed with ``access_key_id`` needs."""
    return Call("func_check_upload_credential", {"access_key_id": access_key_id}, _same)


def revoke_upload_credentials(job_id: str) -> Call[dict[str, Any]]:
    """Revokes every credential of a job."""
    return Call("func_revoke_upload_credentials", {"job_id": job_id}, _same)


def record_artifact(
    bucket: str,
    key: str,
    job_id: str,
    size_bytes: int,
    etag: str,
    *,
    content_type: str | None = None,
    access_key_id: str | None = None,
    upload_id: str | None = None,
) -> Call[dict[str, Any]]:
    """Indexes an object whose file is in place."""
    return Call(
        "func_record_artifact",
        {
            "bucket": bucket,
            "key": key,
            "job_id": job_id,
            "size_bytes": size_bytes,
            "etag": etag,
            "content_type": content_type,
            "access_key_id": access_key_id,
            "upload_id": upload_id,
        },
        _same,
    )


def get_artifact(bucket: str, key: str) -> Call[dict[str, Any] | None]:
    """An object's index row, or None."""
    return Call("func_get_artifact", {"bucket": bucket, "key": key}, _same)


def delete_artifact(bucket: str, key: str) -> Call[dict[str, Any]]:
    """Drops an object from the index."""
    return Call("func_delete_artifact", {"bucket": bucket, "key": key}, _same)


def list_artifacts(
    bucket: str,
    prefix: str = "",
    delimiter: str | None = None,
    after: str | None = None,
    after_is_prefix: bool = False,
    max_keys: int = 1000,
) -> Call[dict[str, Any]]:
    """One ListObjectsV2 page: ``{entries, truncated}``."""
    return Call(
        "func_list_artifacts",
        {
            "bucket": bucket,
            "prefix": prefix,
            "delimiter": delimiter,
            "after": after,
            "after_is_prefix": after_is_prefix,
            "max_keys": max_keys,
        },
        _same,
    )


def list_upload_buckets() -> Call[list[dict[str, Any]]]:
    """Buckets holding objects."""
    return Call("func_list_upload_buckets", {}, _same)


def start_multipart_upload(
    upload_id: str,
    job_id: str,
    bucket: str,
    key: str,
    *,
    access_key_id: str | None = None,
    content_type: str | None = None,
) -> Call[dict[str, Any]]:
    """Records a new multipart upload."""
    return Call(
        "func_start_multipart_upload",
        {
            "upload_id": upload_id,
            "job_id": job_id,
            "bucket": bucket,
            "key": key,
            "access_key_id": access_key_id,
            "content_type": content_type,
        },
        _same,
    )


def record_upload_part(
    upload_id: str, part_number: int, size_bytes: int, etag: str
) -> Call[dict[str, Any] | None]:
    """Records a part on disk; None when the upload is not in progress."""
    return Call(
        "func_record_upload_part",
        {
            "upload_id": upload_id,
            "part_number": part_number,
            "size_bytes": size_bytes,
            "etag": etag,
        },
        _same,
    )


def get_multipart_upload(upload_id: str) -> Call[dict[str, Any] | None]:
    """A multipart upload in progress, or None."""
    return Call("func_get_multipart_upload", {"upload_id": upload_id}, _same)


def touch_multipart_upload(upload_id: str) -> Call[dict[str, Any] | None]:
    """A multipart upload in progress with its last activity set to now, or None."""
    return Call("func_touch_multipart_upload", {"upload_id": upload_id}, _same)


def expire_multipart_uploads(
    max_age_hours: int, grace_minutes: int = 60, max_count: int = 1000
) -> Call[dict[str, Any]]:
    """Forgets abandoned multipart uploads: ``{expired: [{upload_id, ...}], count}``."""
    return Call(
        "func_expire_multipart_uploads",
        {"max_age_hours": max_age_hours, "grace_minutes": grace_minutes, "max_count": max_count},
        _same,
    )


def end_multipart_upload(upload_id: str) -> Call[dict[str, Any]]:
    """Forgets an aborted multipart upload."""
    return Call("func_end_multipart_upload", {"upload_id": upload_id}, _same)


def upload_progress(job_id: str) -> Call[dict[str, Any]]:
    """A job's uploads: ``{objects, bytes, last_upload_at, in_progress}``."""
    return Call("func_upload_progress", {"job_id": job_id}, _same)
