"""Secrets from AWS Secrets Manager (extra ``[aws]``): one secret holding a JSON object.

``ORCHESTRATOR_AWS_SECRET_NAME`` names the secret (its SecretString is
``{"NAME": "value", ...}``); the region comes from ``AWS_DEFAULT_REGION``, credentials
from boto3's standard chain (environment, shared config, instance role). Another
endpoint (a local stand-in, a VPC endpoint): ``AWS_ENDPOINT_URL_SECRETS_MANAGER``, the
name boto3 reads itself (from the service id "Secrets Manager"), or
``AWS_ENDPOINT_URL_SECRETSMANAGER``, which boto3 ignores and this provider passes on.
Caching and outages: :mod:`orchestrator.secrets.remote`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from orchestrator.secrets.base import SecretsError
from orchestrator.secrets.remote import RemoteSecrets, quiet_library_loggers, secrets_document


class AwsSecrets(RemoteSecrets):
    """The secrets of one AWS Secrets Manager secret."""

    name = "aws"

    def __init__(
        self,
        secret_name: str,
        ttl: float = 300,
        *,
        region: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl, clock=clock)
        import boto3  # the [aws] extra; build_secrets_manager checks it is installed

        quiet_library_loggers("boto3", "botocore", "urllib3")
        self.secret_name = secret_name
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        self._session = boto3.session.Session()
        self._client: Any = None

    def _secretsmanager(self) -> Any:
        if self._client is None:
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError

            try:
                self._client = self._session.client(
                    "secretsmanager",
                    region_name=self.region,
                    endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SECRETSMANAGER") or None,
                    config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}),
                )
            except BotoCoreError as error:
                raise SecretsError(
                    f"AWS Secrets Manager: {error} (set AWS_DEFAULT_REGION)"
                ) from None
        return self._client

    def fetch(self) -> dict[str, str]:
        """The secret's JSON object, or SecretsError naming the AWS error code."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"AWS secret {self.secret_name!r}"
        try:
            answer = self._secretsmanager().get_secret_value(SecretId=self.secret_name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise SecretsError(f"AWS Secrets Manager refused reading {where}: {code}") from None
        except BotoCoreError as error:
            raise SecretsError(f"AWS Secrets Manager unreachable: {type(error).__name__}") from None
        text = answer.get("SecretString")
        if not isinstance(text, str):
            raise SecretsError(f"{where} has no SecretString (a binary secret is not read)")
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretsError(f"{where} is not a JSON object of NAME: value") from None
        return secrets_document(data, where)

    def describe(self) -> str:
        """What this provider reads, for ``orchestrator secrets check``."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL_SECRETSMANAGER") or os.environ.get(
            "AWS_ENDPOINT_URL_SECRETS_MANAGER"
        )
        at = f" at {endpoint}" if endpoint else ""
        return f"AWS Secrets Manager secret {self.secret_name} ({self.region or 'no region'}){at}"
