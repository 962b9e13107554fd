"""IP addresses and networks from settings and headers, with the stdlib ``ipaddress``.

Kept apart from the HTTP server so the settings can validate ``ORCHESTRATOR_TRUSTED_PROXIES``
(and any other CIDR list: webhook allowlists, exempt networks) at start with the same
rules the server applies per request. IPv4-mapped IPv6 is IPv4 everywhere here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from orchestrator.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "ORCHESTRATOR_TRUSTED_PROXIES"
ACCEPTED_FORM = (
    "comma-separated IPv4/IPv6 addresses or CIDRs, such as 10.0.0.1, 10.0.0.0/8, fd00::/8"
)


def parse_network(entry: str) -> IPNetwork:
    """One trusted-proxy entry as a network, or ``ValueError`` with one line naming it."""
    text = entry.strip()
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"entry {text!r} is not an IP address or CIDR") from None
        raise ValueError(
            f"entry {text!r} has host bits set (did you mean {loose.with_prefixlen}?)"
        ) from None
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


def parse_trusted_proxies(
    value: str | Iterable[str], setting: str = SETTING
) -> tuple[IPNetwork, ...]:
    """The trusted networks of a setting, or :class:`ConfigError` naming the bad entry."""
    entries = value.split(",") if isinstance(value, str) else list(value)
    networks: list[IPNetwork] = []
    for entry in entries:
        if not entry.strip():
            if isinstance(value, str) and not value.strip():
                break
            raise ConfigError(
                f"invalid setting {setting}: an empty entry; expected {ACCEPTED_FORM}"
            )
        try:
            networks.append(parse_network(entry))
        except ValueError as error:
            raise ConfigError(
                f"invalid setting {setting}: {error}; expected {ACCEPTED_FORM}"
            ) from None
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """An address as a client sent it, IPv4-mapped IPv6 as IPv4; None when malformed."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    """True when ``address`` is inside one of ``trusted``."""
    return any(address.version == net.version and address in net for net in trusted)
