"""A real `orchestrator serve` with jobs holding upload credentials, and the real boto3
client (default configuration) pointed at its S3 endpoint, over http or https."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.client import BaseClient, Config

from orchestrator.storage import calls
from tests.integration.jobkit import Hub, hub
from tests.support.hubserver import TOKEN, HubServer


@dataclass
class Uploads:
    """The running hub, its storage dir, the database and a CA file (https only)."""

    server: HubServer
    storage: Path
    db_url: str
    ca_file: Path | None

    @property
    def endpoint(self) -> str:
        return self.server.url + "/api/cloud/storage"

    def job(self, db: Hub, user: str = "alice") -> dict[str, Any]:
        """A new queued job and its credentials (func_issue_upload_credential)."""
        db.user(user)
        job_id = str(db.submit(user).job_id)
        return dict(db.run(calls.issue_upload_credential(job_id)))

    def client(self, credential: dict[str, Any], **overrides: str) -> BaseClient:
        """boto3's S3 client, default configuration, signing with ``credential``."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=overrides.get("key_id", credential["access_key_id"]),
            aws_secret_access_key=overrides.get("secret", credential["secret_access_key"]),
            region_name="us-east-1",
            verify=str(self.ca_file) if self.ca_file else None,
            config=Config(signature_version=overrides["signature_version"])
            if "signature_version" in overrides
            else None,
        )


def tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1: (cert, key, ca)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp / "cert.pem", tmp / "key.pem", tmp / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    return cert_file, key_file, ca_file


@contextlib.contextmanager
def uploads_hub(db_url: str, tmp: Path, scheme: str = "http", **env: str) -> Iterator[Uploads]:
    """`orchestrator serve --no-daemon` with storage under ``tmp/storage``."""
    tmp.mkdir(parents=True, exist_ok=True)
    storage = tmp / "storage"
    args: list[str] = ["--no-daemon"]
    ca_file = None
    verify: Any = True
    if scheme == "https":
        cert, key, ca_file = tls_files(tmp)
        args += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
        import ssl

        verify = ssl.create_default_context(cafile=str(ca_file))
    server = HubServer(
        tmp,
        *args,
        scheme=scheme,
        DATABASE_URL=db_url,
        ORCHESTRATOR_API_TOKEN=TOKEN,
        ORCHESTRATOR_STORAGE_DIR=str(storage),
        ORCHESTRATOR_STORAGE_MIN_FREE_BYTES="0",
        **env,
    )
    with server.start(verify=verify):
        yield Uploads(server, storage, db_url, ca_file)


def files_under(path: Path) -> list[Path]:
    """Every regular file below ``path`` (empty when it does not exist)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


__all__ = ["TOKEN", "Uploads", "files_under", "hub", "uploads_hub"]
