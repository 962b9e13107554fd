"""What the daemon's config file says about one external provider (``providers.<name>``).

It belongs to the providers, which are built from it; the daemon's config file
(:mod:`orchestrator.daemon.config`) only holds a mapping of these. The same model checks
the runtime overrides of ``PUT /api/cloud/providers/{name}`` (OPS §12), so the file and
the API accept exactly the same values.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CIDR_FORM = "an IP address or CIDR such as 10.0.0.0/8, 192.168.1.0/24, 1.2.3.4/32 or 2001:db8::/32"
INSECURE_WARNING = (
    "Disabling SSL verification is a security risk. Only do this if you have a "
    "self-signed certificate or are behind a corporate proxy. Continue?"
)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidr(entry: object) -> IpNetwork:
    """One allowlist entry as a network (a single IP is /32 or /128); ValueError names
    the entry and the accepted form."""
    if not isinstance(entry, str) or not entry.strip() or "\x00" in entry:
        raise ValueError(f"malformed CIDR {str(entry)[:80]!r}: expected {CIDR_FORM}")
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(f"malformed CIDR {entry[:80]!r}: expected {CIDR_FORM}") from None


class ProviderSection(BaseModel):
    """One entry of ``providers``: an external REST provider the daemon dispatches to.

    The API token is never written in the file: ``token_env`` names the environment
    variable that holds it; ``webhook_secret`` names the secret (OPS §13) holding the
    Standard Webhooks signing secret(s), default ``WEBHOOK_SECRET_<NAME>``, then
    ``CLOUD_WEBHOOK_SECRET``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["http"] = "http"
    base_url: str = Field(pattern=r"^https?://\S+$")
    webhook_url: str | None = Field(default=None, pattern=r"^(auto|https?://\S+)$")
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)
    max_retries: int = Field(default=3, ge=0, le=10)
    status_concurrency: int = Field(default=8, ge=1, le=256)
    # Network (OPS §12): unset = the global ORCHESTRATOR_* setting, else httpx's default.
    http_timeout: float | None = Field(default=None, gt=0, le=600)
    ssl_verify: bool | None = None
    ssl_ca_bundle: str | None = Field(default=None, min_length=1, max_length=4096)
    proxy_url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2048)
    # Webhooks (OPS §11).
    webhook_allowed_ips: tuple[str, ...] | None = Field(default=None, max_length=1000)
    webhook_require_signature: bool = True
    webhook_secret: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
    # Circuit breaker (OPS §12.4).
    circuit_open_after: int = Field(default=5, ge=1, le=1000)
    circuit_half_open_after_seconds: int = Field(default=30, ge=1, le=86_400)

    @field_validator("webhook_allowed_ips", mode="before")
    @classmethod
    def _cidrs(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            for entry in value:
                parse_cidr(entry)
        return value

    @property
    def timeout(self) -> float | None:
        """The provider's own timeout (``http_timeout``, alias ``timeout_seconds``)."""
        return self.http_timeout if self.http_timeout is not None else self.timeout_seconds

    def allowed_networks(self) -> tuple[IpNetwork, ...]:
        """The allowlist as networks; empty = every address accepted (seed A8)."""
        return tuple(parse_cidr(e) for e in self.webhook_allowed_ips or ())

    def webhook_secret_names(self, name: str) -> tuple[str, ...]:
        """The secret names tried in order for this provider's webhook signatures."""
        own = self.webhook_secret or "WEBHOOK_SECRET_" + name.upper().replace("-", "_").replace(
            ".", "_"
        )
        return (own, "CLOUD_WEBHOOK_SECRET")

    def resolved_webhook_url(self, name: str, public_url: str | None) -> str | None:
        """``webhook_url`` with ``auto`` made ``{ORCHESTRATOR_PUBLIC_URL}/api/webhooks/{name}``
        (ValueError when the public URL is not set)."""
        if self.webhook_url != "auto":
            return self.webhook_url
        if not public_url:
            raise ValueError(
                f"providers.{name}.webhook_url is auto but ORCHESTRATOR_PUBLIC_URL is not set; "
                "set it to the hub's external base URL (https://hub.example.com) or give the URL"
            )
        return f"{public_url.rstrip('/')}/api/webhooks/{name}"
