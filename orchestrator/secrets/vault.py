"""Secrets from HashiCorp Vault (extra ``[vault]``): one KV secret holding NAME: value.

``VAULT_ADDR``, ``VAULT_TOKEN`` and ``VAULT_CACERT`` as Vault's own CLI reads them; the
secret at ``ORCHESTRATOR_VAULT_MOUNT`` (``secret``) / ``ORCHESTRATOR_VAULT_PATH``
(``orchestrator``) of a KV engine of version ``ORCHESTRATOR_VAULT_KV_VERSION`` (2). The seed
retried a failed KV v2 read as v1, which turned a permission error into a confusing "not
found"; here v1 is read only when configured. Caching and outages:
:mod:`orchestrator.secrets.remote`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.secrets.base import SecretsError
from orchestrator.secrets.remote import RemoteSecrets, quiet_library_loggers, secrets_document


class VaultSecrets(RemoteSecrets):
    """The secrets of one Vault KV secret."""

    name = "vault"

    def __init__(
        self,
        addr: str,
        token: str | None,
        *,
        path: str = "orchestrator",
        mount: str = "secret",
        kv_version: int = 2,
        cacert: Path | None = None,
        ttl: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl, clock=clock)
        import hvac  # the [vault] extra; build_secrets_manager checks it is installed

        quiet_library_loggers("hvac", "urllib3")
        self.addr, self.path, self.mount, self.kv_version = addr, path.strip("/"), mount, kv_version
        self.client: Any = hvac.Client(
            url=addr, token=token, verify=str(cacert) if cacert else True, timeout=5
        )

    def fetch(self) -> dict[str, str]:
        """The secret's data, or SecretsError saying why not (never the token)."""
        import hvac.exceptions
        import requests

        where = f"Vault secret {self.mount}/{self.path} (KV v{self.kv_version})"
        try:
            if self.kv_version == 2:
                answer = self.client.secrets.kv.v2.read_secret_version(
                    path=self.path, mount_point=self.mount, raise_on_deleted_version=True
                )
                data = answer["data"]["data"]
            else:
                answer = self.client.secrets.kv.v1.read_secret(
                    path=self.path, mount_point=self.mount
                )
                data = answer["data"]
        except hvac.exceptions.InvalidPath:
            raise SecretsError(f"{where} does not exist") from None
        except hvac.exceptions.Forbidden:
            raise SecretsError(
                f"Vault refused reading {where}: permission denied "
                "(check VAULT_TOKEN and its policy)"
            ) from None
        except hvac.exceptions.VaultError as error:
            raise SecretsError(f"Vault error reading {where}: {type(error).__name__}") from None
        except requests.exceptions.RequestException as error:
            raise SecretsError(
                f"Vault at {self.addr} unreachable: {type(error).__name__}"
            ) from None
        except (KeyError, TypeError):
            raise SecretsError(
                f"{where}: unexpected answer shape (is the mount KV v{self.kv_version}?)"
            ) from None
        return secrets_document(data, where)

    def describe(self) -> str:
        """What this provider reads, for ``orchestrator secrets check``."""
        return f"Vault KV v{self.kv_version} {self.addr} {self.mount}/{self.path}"
