"""Secrets from the process environment (the default provider, asked first)."""

from __future__ import annotations

import os


class EnvSecrets:
    """``os.environ[prefix + NAME]``; an empty value counts as unset."""

    name = "env"

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def get(self, key: str) -> str | None:
        """The variable's value, or None."""
        value = os.environ.get(self.prefix + key)
        return value if value else None

    def describe(self) -> str:
        """What this provider reads, for ``orchestrator secrets check``."""
        return f"environment variables {self.prefix}NAME" if self.prefix else "environment"
