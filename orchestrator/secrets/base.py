"""What every secrets provider is: a name and a lookup by canonical secret name."""

from __future__ import annotations

import re
from typing import Protocol

from orchestrator.errors import ConfigError

_CANONICAL = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


class SecretsError(ConfigError):
    """A secrets provider cannot answer (a refused file, an unreachable service); one line,
    never carrying a secret value."""


class SecretsProvider(Protocol):
    """One source of secrets (environment, file; AWS and Vault later).

    ``get`` answers the value of a canonical name (see :func:`normalise_name`) or None,
    and raises :class:`SecretsError` when the source itself cannot be used.
    """

    name: str

    def get(self, key: str) -> str | None: ...

    def describe(self) -> str: ...


def normalise_name(name: str) -> str:
    """The canonical form of a secret's name: upper case, ``-`` and ``.`` as ``_`` (seed
    convention), or a :class:`SecretsError` naming what is accepted."""
    key = name.strip().upper().replace("-", "_").replace(".", "_")
    if not _CANONICAL.match(key):
        raise SecretsError(
            f"invalid secret name {name[:80]!r}: expected a letter, then letters, digits, "
            "_, - or . (at most 128 characters)"
        )
    return key
