"""Secrets: the admin token, webhook secrets, provider tokens, resolved by name.

Providers are asked in the seed's order, the environment first, then a secrets file
(JSON or YAML, refused when other users may read it); each answer is cached for
``ORCHESTRATOR_SECRETS_TTL`` seconds, a miss for at most 30 s, so a rotated or newly
added secret is picked up without a restart. Values travel as ``SecretStr`` and never
reach a log line, a health body, a metric or an audit row. Remote providers (AWS,
Vault) implement :class:`~orchestrator.secrets.base.SecretsProvider` and join the list.
"""

from orchestrator.secrets.base import SecretsError, SecretsProvider, normalise_name
from orchestrator.secrets.env import EnvSecrets
from orchestrator.secrets.file import FileSecrets, default_secrets_file, write_secret
from orchestrator.secrets.manager import (
    WELL_KNOWN,
    Resolved,
    SecretsManager,
    build_secrets_manager,
)

__all__ = [
    "WELL_KNOWN",
    "EnvSecrets",
    "FileSecrets",
    "Resolved",
    "SecretsError",
    "SecretsManager",
    "SecretsProvider",
    "build_secrets_manager",
    "default_secrets_file",
    "normalise_name",
    "write_secret",
]
