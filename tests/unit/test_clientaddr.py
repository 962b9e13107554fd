"""Who the client is, from the socket peer and the forwarded headers (OPS §8)."""

from __future__ import annotations

import pytest

from orchestrator.config import load_settings
from orchestrator.errors import ConfigError
from orchestrator.netaddr import parse_trusted_proxies
from orchestrator.server.clientaddr import resolve

TRUSTED = parse_trusted_proxies("10.0.0.0/8, 192.0.2.1, fd00::/8")


def scope(peer: str | None, *headers: tuple[str, str]) -> dict:
    return {
        "type": "http",
        "client": (peer, 51000) if peer else None,
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
    }


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # Untrusted peers: every forwarded header is ignored (no spoofing, no localhost bypass).
        ("203.0.113.5", [("X-Forwarded-For", "127.0.0.1")], "203.0.113.5"),
        ("203.0.113.5", [("X-Real-IP", "127.0.0.1")], "203.0.113.5"),
        ("127.0.0.1", [("X-Forwarded-For", "198.51.100.1")], "127.0.0.1"),
        # A trusted peer: right to left, skipping trusted hops.
        ("10.1.1.1", [("X-Forwarded-For", "6.6.6.6, 198.51.100.1, 10.2.2.2")], "198.51.100.1"),
        ("10.1.1.1", [("X-Forwarded-For", "198.51.100.1")], "198.51.100.1"),
        # Several header lines are one list.
        (
            "10.1.1.1",
            [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.9, 192.0.2.1")],
            "198.51.100.9",
        ),
        # All trusted: the leftmost.
        ("10.1.1.1", [("X-Forwarded-For", "10.9.9.9, 192.0.2.1")], "10.9.9.9"),
        # A malformed entry stops the walk at the last trusted hop.
        ("10.1.1.1", [("X-Forwarded-For", "6.6.6.6, garbage, 10.3.3.3")], "10.3.3.3"),
        ("10.1.1.1", [("X-Forwarded-For", "6.6.6.6,,")], "10.1.1.1"),
        ("10.1.1.1", [("X-Forwarded-For", "1.2.3.4\x00")], "10.1.1.1"),
        # No X-Forwarded-For: a valid X-Real-IP, else the peer.
        ("10.1.1.1", [("X-Real-IP", "198.51.100.2")], "198.51.100.2"),
        ("10.1.1.1", [("X-Real-IP", "nope")], "10.1.1.1"),
        # X-Forwarded-For wins over X-Real-IP.
        (
            "10.1.1.1",
            [("X-Real-IP", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.3")],
            "198.51.100.3",
        ),
        # IPv4-mapped IPv6 is IPv4, for the peer and in headers.
        ("::ffff:10.1.1.1", [("X-Forwarded-For", "::ffff:198.51.100.4")], "198.51.100.4"),
        ("::ffff:203.0.113.7", [("X-Forwarded-For", "1.1.1.1")], "203.0.113.7"),
        # IPv6 proxies and clients; bracketed forms.
        ("fd00::1", [("X-Forwarded-For", "2001:db8::1, fd12::2")], "2001:db8::1"),
        ("fd00::1", [("X-Forwarded-For", "[2001:db8::5]")], "2001:db8::5"),
        (None, [("X-Forwarded-For", "1.1.1.1")], None),
    ],
)
def test_resolution(peer, headers, expected):
    assert resolve(scope(peer, *headers), TRUSTED) == expected


def test_mapped_networks_compare_as_ipv4():
    trusted = parse_trusted_proxies("::ffff:10.0.0.0/104")
    assert resolve(scope("10.4.4.4", ("X-Forwarded-For", "198.51.100.8")), trusted) == (
        "198.51.100.8"
    )


def test_nothing_trusted_means_the_peer():
    assert resolve(scope("10.1.1.1", ("X-Forwarded-For", "1.1.1.1")), ()) == "10.1.1.1"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("10.0.0.0/8, 10.0.0.300", "entry '10.0.0.300' is not an IP address or CIDR"),
        ("10.0.0.1/8", "entry '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)"),
        ("10.0.0.0/8,,10.1.0.0/16", "an empty entry"),
        ("localhost", "entry 'localhost' is not an IP address or CIDR"),
        ("10.0.0.0/33", "entry '10.0.0.0/33' is not an IP address or CIDR"),
    ],
)
def test_a_malformed_trusted_proxy_is_refused_with_one_line(monkeypatch, value, words):
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    line = str(caught.value)
    assert line.startswith("invalid setting ORCHESTRATOR_TRUSTED_PROXIES: ")
    assert words in line and "expected comma-separated IPv4/IPv6 addresses or CIDRs" in line
    assert "\n" not in line


def test_empty_and_valid_settings(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_PROXIES", " ")
    assert load_settings(None).trusted_proxy_networks == ()
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    assert [str(n) for n in load_settings(None).trusted_proxy_networks] == [
        "10.0.0.0/8",
        "::1/128",
    ]
