"""What a job is handed to upload with: the ``AWS_*`` environment boto3, the AWS CLI and
most S3 tools read by themselves, plus the bucket and the job's own prefix.

The endpoint is ``{ORCHESTRATOR_PUBLIC_URL}/api/cloud/storage``: the address the job can
reach the hub at (a tunnel, or a public address with TLS). Without a public URL there
is nowhere to upload to, so no credential is issued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.config import Settings

STORAGE_PATH = "/api/cloud/storage"
REGION = "us-east-1"  # any region verifies; boto3 needs one


def storage_endpoint(settings: Settings) -> str | None:
    """The endpoint URL jobs are given, or None when ``ORCHESTRATOR_PUBLIC_URL`` is unset."""
    if not settings.public_url:
        return None
    return settings.public_url.rstrip("/") + STORAGE_PATH


def upload_environment(credential: Mapping[str, Any], endpoint: str) -> dict[str, str]:
    """The environment of a local job's process (``func_issue_upload_credential``'s answer)."""
    return {
        "AWS_ACCESS_KEY_ID": str(credential["access_key_id"]),
        "AWS_SECRET_ACCESS_KEY": str(credential["secret_access_key"]),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "ORCHESTRATOR_UPLOAD_BUCKET": str(credential["bucket"]),
        "ORCHESTRATOR_UPLOAD_PREFIX": str(credential["prefix"]),
    }


def upload_object(credential: Mapping[str, Any], endpoint: str) -> dict[str, str]:
    """The ``upload`` object of an HTTP provider's ``POST /jobs`` body."""
    return {
        "endpoint_url": endpoint,
        "access_key_id": str(credential["access_key_id"]),
        "secret_access_key": str(credential["secret_access_key"]),
        "region": REGION,
        "bucket": str(credential["bucket"]),
        "prefix": str(credential["prefix"]),
        "expires_at": str(credential["expires_at"]),
    }
