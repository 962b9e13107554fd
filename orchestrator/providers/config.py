"""What the daemon's config file says about one external provider (``providers.<name>``).

It belongs to the providers, which are built from it; the daemon's config file
(:mod:`orchestrator.daemon.config`) only holds a mapping of these.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ProviderSection(BaseModel):
    """One entry of ``providers``: an external REST provider the daemon dispatches to.

    The API token is never written in the file: ``token_env`` names the environment
    variable that holds it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["http"] = "http"
    base_url: str = Field(pattern=r"^https?://\S+$")
    webhook_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    max_retries: int = Field(default=3, ge=0, le=10)
    status_concurrency: int = Field(default=8, ge=1, le=256)
