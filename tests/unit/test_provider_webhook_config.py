"""The provider settings of webhooks and network calls, as the YAML file and the API
accept them: malformed CIDRs one line, ``webhook_url: auto``, allowlists, signatures."""

from __future__ import annotations

import pytest

from orchestrator.config import Settings
from orchestrator.daemon.config import EnterpriseConfig, parse_config
from orchestrator.errors import ConfigError
from orchestrator.providers.config import ProviderSection
from orchestrator.providers.runtime import merged
from orchestrator.providers.signatures import check_webhook_setup, signers, verify
from orchestrator.secrets import SecretsManager
from orchestrator.server.webhooks import _allowed
from tests.support.webhooks import new_secret, signed


def yaml_with(**provider: object) -> str:
    import yaml

    return yaml.safe_dump({"providers": {"cloud": {"base_url": "https://x.example", **provider}}})


@pytest.mark.parametrize("entry", ["10.0.0.300/8", "192.168.1.0/33", "not-an-ip", "", "::g/64"])
def test_a_malformed_cidr_is_one_line_naming_it(entry):
    with pytest.raises(ConfigError) as error:
        parse_config(yaml_with(webhook_allowed_ips=["10.0.0.0/8", entry]), "hub.yaml")
    line = str(error.value)
    assert "\n" not in line and "providers.cloud.webhook_allowed_ips" in line
    assert repr(entry) in line and "CIDR such as 10.0.0.0/8" in line


def test_allowlist_single_ips_ipv6_and_ipv4_mapped_addresses():
    section = ProviderSection(
        base_url="https://x", webhook_allowed_ips=("1.2.3.4", "10.0.0.0/8", "2001:db8::/32")
    )
    assert _allowed("1.2.3.4", section) and not _allowed("1.2.3.5", section)
    assert _allowed("::ffff:10.9.8.7", section) and _allowed("2001:db8::1", section)
    assert not _allowed("2001:db9::1", section) and not _allowed(None, section)
    assert not _allowed("garbage", section)
    for open_to_all in (None, ()):
        anyone = ProviderSection(base_url="https://x", webhook_allowed_ips=open_to_all)
        assert _allowed("203.0.113.9", anyone) and _allowed(None, anyone)


def test_webhook_url_auto_needs_the_public_url():
    section = ProviderSection(base_url="https://x", webhook_url="auto")
    assert (
        section.resolved_webhook_url("cloud", "https://hub.example/")
        == "https://hub.example/api/webhooks/cloud"
    )
    with pytest.raises(ValueError, match="ORCHESTRATOR_PUBLIC_URL is not set"):
        section.resolved_webhook_url("cloud", None)


class Secrets(SecretsManager):
    def __init__(self, values: dict[str, str]) -> None:
        super().__init__([])
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def test_start_up_needs_a_usable_secret_for_a_provider_with_a_webhook():
    config = EnterpriseConfig(parse_config(yaml_with(webhook_url="https://hub/api/webhooks/cloud")))
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET_CLOUD or CLOUD_WEBHOOK_SECRET"):
        check_webhook_setup(config, Secrets({}), Settings())
    check_webhook_setup(config, Secrets({"CLOUD_WEBHOOK_SECRET": new_secret()}), Settings())
    unsigned = EnterpriseConfig(
        parse_config(yaml_with(webhook_url="auto", webhook_require_signature=False))
    )
    with pytest.raises(ConfigError, match="ORCHESTRATOR_PUBLIC_URL"):
        check_webhook_setup(unsigned, Secrets({}), Settings())


def test_rotation_any_listed_secret_verifies_and_junk_does_not_break_it():
    old, new = new_secret(), new_secret()
    verifiers = signers(f"{old}, not*base64!! {new}")
    body, headers = signed(new, {"id": "r", "status": "running"})
    assert verify(body, headers, verifiers).ok
    body, headers = signed(new_secret(), {"id": "r", "status": "running"})
    check = verify(body, headers, verifiers)
    assert (check.ok, check.reason) == (False, "bad_signature")
    body, headers = signed(old, {"id": "r"}, age=-400)  # from the future
    assert verify(body, headers, verifiers).reason == "timestamp_out_of_tolerance"


def test_an_override_is_checked_by_the_same_model():
    base = ProviderSection(base_url="https://x", timeout_seconds=10)
    assert merged(base, {"http_timeout": 60}).timeout == 60
    assert merged(base, {}).timeout == 10
    with pytest.raises(ValueError, match="malformed CIDR"):
        merged(base, {"webhook_allowed_ips": ["1.2.3.4/40"]})
    assert merged(base, {"base_url": "https://evil"}).base_url == "https://x"  # not overridable
