"""How the hub reaches a provider's API: proxy, TLS verification, CA bundle, timeout.

Precedence, per setting (OPS §12): the runtime override (``PUT /api/cloud/providers/{name}``,
stored in the database) > the provider's YAML section > ``ORCHESTRATOR_SSL_VERIFY`` /
``ORCHESTRATOR_CA_BUNDLE`` / ``ORCHESTRATOR_HTTP_TIMEOUT`` > httpx's own defaults, which
read ``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY`` and ``SSL_CERT_FILE``. An explicit
``proxy_url`` is mounted per scheme with ``NO_PROXY``'s hosts mounted direct, so the
exceptions a corporate network lists still hold. A CA bundle travels as an
:class:`ssl.SSLContext` (httpx deprecates ``verify=<path>``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# httpx here builds the providers' clients (see providers/http.py).
import httpx

from orchestrator.config import Settings
from orchestrator.errors import ConfigError
from orchestrator.providers.config import ProviderSection

logger = logging.getLogger("orchestrator.providers.network")

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class NetworkSettings:
    """The effective network settings of one provider's client."""

    timeout: float = DEFAULT_TIMEOUT
    verify: bool = True
    ca_bundle: str | None = None
    proxy_url: str | None = None

    def describe(self) -> dict[str, Any]:
        """For the API and logs: the proxy's credentials redacted."""
        return {
            "http_timeout": self.timeout,
            "ssl_verify": self.verify,
            "ssl_ca_bundle": self.ca_bundle,
            "proxy_url": redact_url(self.proxy_url),
        }


def redact_url(url: str | None) -> str | None:
    """``url`` with any user and password replaced by ``***`` (never shown anywhere)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def effective_network(section: ProviderSection, settings: Settings) -> NetworkSettings:
    """The provider's own values, else the global settings, else the defaults."""
    verify = section.ssl_verify if section.ssl_verify is not None else settings.provider_ssl_verify
    bundle = section.ssl_ca_bundle or (
        str(settings.provider_ca_bundle) if settings.provider_ca_bundle else None
    )
    timeout = section.timeout if section.timeout is not None else settings.provider_http_timeout
    return NetworkSettings(float(timeout), verify, bundle, section.proxy_url)


def ssl_context(bundle: str) -> ssl.SSLContext:
    """A verifying context trusting the PEM file ``bundle``; ConfigError in one line."""
    try:
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ConfigError(
            f"cannot use CA bundle {bundle}: {reason}; expected a readable PEM file of CA "
            "certificates (ssl_ca_bundle or ORCHESTRATOR_CA_BUNDLE)"
        ) from None


def _no_proxy_patterns() -> list[str] | None:
    """``NO_PROXY``'s hosts as httpx mount patterns (httpx's own reading of it);
    None when it is ``*`` (no proxy for anyone)."""
    raw = os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))
    patterns: list[str] = []
    for host in (h.strip() for h in raw.split(",")):
        if host == "*":
            return None
        if not host:
            continue
        if "://" in host:
            patterns.append(host)
            continue
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and address.version == 6:
            patterns.append(f"all://[{host}]")
        elif address is not None or host.lower() == "localhost":
            patterns.append(f"all://{host}")
        else:
            patterns.append(f"all://*{host}")
    return patterns


def client_options(
    name: str, network: NetworkSettings, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """The keyword arguments of the provider's ``httpx.AsyncClient``."""
    verify: bool | ssl.SSLContext = network.verify
    if not network.verify:
        logger.warning(
            "SSL verification is OFF for provider %s: its API's certificate is not checked",
            name,
        )
    elif network.ca_bundle:
        verify = ssl_context(network.ca_bundle)
    options: dict[str, Any] = {"timeout": network.timeout, "verify": verify}
    if transport is not None:
        options["transport"] = transport
        return options
    if network.proxy_url:
        proxied = httpx.AsyncHTTPTransport(proxy=network.proxy_url, verify=verify)
        no_proxy = _no_proxy_patterns()
        if no_proxy is not None:
            mounts: dict[str, httpx.AsyncBaseTransport | None] = {
                "http://": proxied,
                "https://": proxied,
            }
            direct = httpx.AsyncHTTPTransport(verify=verify)
            mounts.update({pattern: direct for pattern in no_proxy})
            options["mounts"] = mounts
    return options
