"""Resolving a secret by name through the providers, with a TTL cache.

The seed cached every answer forever, misses too, so a rotated or newly set secret needed
a restart. Here a found value is kept ``ttl`` seconds and a miss at most 30 s; a provider
that fails is reported (health, ``secrets check``) and the next provider is asked.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from orchestrator.config import Settings
from orchestrator.secrets.base import SecretsError, SecretsProvider, normalise_name
from orchestrator.secrets.env import EnvSecrets
from orchestrator.secrets.file import FileSecrets, default_secrets_file

# Names the hub itself asks for (OPS §13); `secrets check` lists them.
WELL_KNOWN = (
    "ORCHESTRATOR_API_TOKEN",
    "CLOUD_WEBHOOK_SECRET",
    "SUPABASE_SERVICE_ROLE_KEY",
    "HF_TOKEN",
    "REPLICATE_API_TOKEN",
)
MISS_TTL = 30.0
logger = logging.getLogger("orchestrator.secrets")


@dataclass(frozen=True)
class Resolved:
    """A secret's value (never printed) and the provider that had it."""

    value: SecretStr
    provider: str


class SecretsManager:
    """Asks the providers in order; thread-safe (the CLI, the event loop, handlers)."""

    def __init__(
        self,
        providers: Sequence[SecretsProvider],
        ttl: float = 300,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.providers = list(providers)
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, Resolved | None]] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str) -> Resolved | None:
        """The secret ``name`` from the first provider that has it, or None."""
        key = normalise_name(name)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        found: Resolved | None = None
        for provider in self.providers:
            try:
                value = provider.get(key)
            except SecretsError as error:
                with self._lock:
                    self._errors[provider.name] = str(error)
                continue
            with self._lock:
                self._errors.pop(provider.name, None)
            if value is not None:
                found = Resolved(SecretStr(value), provider.name)
                break
        ttl = self.ttl if found is not None else min(MISS_TTL, self.ttl)
        with self._lock:
            self._cache[key] = (now + ttl, found)
        return found

    def get(self, name: str) -> str | None:
        """The plain value of ``name``, or None: for the code that uses the secret."""
        found = self.resolve(name)
        return found.value.get_secret_value() if found is not None else None

    def errors(self) -> dict[str, str]:
        """Providers whose last use failed, with the one-line reason (no values)."""
        with self._lock:
            return dict(self._errors)

    def degraded(self) -> dict[str, str]:
        """Remote providers serving their last good values through an outage, with the
        one-line reason (``/health`` reports ``secrets`` degraded for these)."""
        found: dict[str, str] = {}
        for provider in self.providers:
            problem = getattr(provider, "problem", None)
            reason = problem() if callable(problem) else None
            if reason:
                found[provider.name] = str(reason)
        return found

    def check(self, names: Iterable[str]) -> list[tuple[str, str | None]]:
        """``(name, provider or None)`` for each name, asking the providers afresh."""
        self.invalidate()
        return [(normalise_name(n), getattr(self.resolve(n), "provider", None)) for n in names]

    def invalidate(self) -> None:
        """Forgets every cached answer."""
        with self._lock:
            self._cache.clear()


class Unavailable:
    """A configured provider whose library is not installed: every lookup fails with the
    line that says which extra to install (health reports it)."""

    def __init__(self, name: str, extra: str, setting: str) -> None:
        self.name = name
        self.message = (
            f"{setting} is set but the {name} provider's library is missing: "
            f"pip install 'orchestrator-hub[{extra}]'"
        )

    def get(self, key: str) -> str | None:
        """Always refuses, naming the missing extra."""
        raise SecretsError(self.message)

    def describe(self) -> str:
        """What is missing."""
        return self.message


def _remote_providers(settings: Settings) -> list[SecretsProvider]:
    """AWS then Vault, each when configured (seed order env > file > AWS > Vault)."""
    providers: list[SecretsProvider] = []
    if settings.aws_secret_name:
        if importlib.util.find_spec("boto3") is None:
            missing = Unavailable("aws", "aws", "ORCHESTRATOR_AWS_SECRET_NAME")
            logger.warning("%s", missing.message)
            providers.append(missing)
        else:
            from orchestrator.secrets.aws import AwsSecrets

            providers.append(AwsSecrets(settings.aws_secret_name, settings.secrets_ttl))
    if settings.vault_addr:
        if importlib.util.find_spec("hvac") is None:
            missing = Unavailable("vault", "vault", "VAULT_ADDR")
            logger.warning("%s", missing.message)
            providers.append(missing)
        else:
            from orchestrator.secrets.vault import VaultSecrets

            token = settings.vault_token.get_secret_value() if settings.vault_token else None
            providers.append(
                VaultSecrets(
                    settings.vault_addr,
                    token,
                    path=settings.vault_path,
                    mount=settings.vault_mount,
                    kv_version=settings.vault_kv_version,
                    cacert=settings.vault_cacert,
                    ttl=settings.secrets_ttl,
                )
            )
    return providers


def build_secrets_manager(settings: Settings) -> SecretsManager:
    """Environment, then the secrets file, then AWS and Vault when configured."""
    path = settings.secrets_file or default_secrets_file()
    providers: list[SecretsProvider] = [EnvSecrets(settings.secrets_env_prefix), FileSecrets(path)]
    providers += _remote_providers(settings)
    return SecretsManager(providers, settings.secrets_ttl)
