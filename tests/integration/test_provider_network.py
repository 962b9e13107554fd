"""Provider network settings against real stand-ins: an HTTPS provider whose certificate
comes from a throwaway CA (trustme) and a CONNECT proxy that counts its tunnels."""

from __future__ import annotations

import asyncio

import pytest
import trustme

from orchestrator.config import Settings
from orchestrator.errors import ConfigError
from orchestrator.providers.base import ProviderError, ProviderJob
from orchestrator.providers.config import ProviderSection
from orchestrator.providers.http import HttpProvider
from orchestrator.providers.network import NetworkSettings, effective_network, redact_url
from tests.support.connect_proxy import ConnectProxy
from tests.support.fake_provider import FakeProvider


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def https_remote(ca):
    context = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FakeProvider(ssl_context=context) as server:
        yield server


@pytest.fixture
def proxy():
    with ConnectProxy() as server:
        yield server


@pytest.fixture(autouse=True)
def no_env_proxies(monkeypatch):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def _submit(url: str, network: NetworkSettings):
    async def scenario():
        provider = HttpProvider("cloud", url, max_retries=0, backoff=0, network=network)
        try:
            return await provider.submit(ProviderJob("job-1", "render", {}))
        finally:
            await provider.close()

    return asyncio.run(scenario())


def test_a_ca_bundle_trusts_the_private_ca_and_the_default_store_does_not(https_remote, ca_file):
    """With the CA bundle the submit succeeds; with the system store it is a transient
    certificate failure; ssl_verify off (acknowledged elsewhere) connects without it."""
    assert _submit(https_remote.url, NetworkSettings(ca_bundle=ca_file)).status == "queued"
    with pytest.raises(ProviderError) as refused:
        _submit(https_remote.url, NetworkSettings())
    assert refused.value.transient and "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    assert _submit(https_remote.url, NetworkSettings(verify=False)).status == "queued"


def test_an_unreadable_ca_bundle_is_one_config_line(tmp_path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError) as error:
        _submit("https://127.0.0.1:9", NetworkSettings(ca_bundle=str(missing)))
    assert str(missing) in str(error.value) and "PEM" in str(error.value)
    assert "\n" not in str(error.value)


def test_proxy_url_tunnels_every_call_and_no_proxy_still_holds(
    https_remote, ca_file, proxy, monkeypatch
):
    """An explicit proxy_url: one CONNECT tunnel to the provider; NO_PROXY naming the
    provider's host: straight there, the proxy sees nothing."""
    network = NetworkSettings(ca_bundle=ca_file, proxy_url=proxy.url)
    assert _submit(https_remote.url, network).status == "queued"
    port = https_remote.url.rsplit(":", 1)[1]
    assert proxy.tunnels == [f"127.0.0.1:{port}"]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert _submit(https_remote.url, network).status == "queued"
    assert len(proxy.tunnels) == 1


def test_https_proxy_from_the_environment_is_used_without_a_provider_setting(
    https_remote, ca_file, proxy, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert _submit(https_remote.url, NetworkSettings(ca_bundle=ca_file)).status == "queued"
    assert len(proxy.tunnels) == 1


def test_proxy_credentials_are_sent_but_never_shown(https_remote, ca_file, proxy):
    with_credentials = proxy.url.replace("http://", "http://alice:s3cr3t-pw@")
    network = NetworkSettings(ca_bundle=ca_file, proxy_url=with_credentials)
    assert _submit(https_remote.url, network).status == "queued"
    assert proxy.auth[0] is not None and proxy.auth[0].startswith("Basic ")
    shown = str(network.describe())
    assert "s3cr3t-pw" not in shown and "alice" not in shown and "***@127.0.0.1" in shown
    assert redact_url("http://proxy:8080") == "http://proxy:8080"


def test_reconfigure_switches_a_live_provider_to_the_proxy(https_remote, ca_file, proxy):
    """The runtime-override path: the same provider object, its client rebuilt."""

    async def scenario():
        provider = HttpProvider(
            "cloud", https_remote.url, max_retries=0, network=NetworkSettings(ca_bundle=ca_file)
        )
        try:
            first = await provider.submit(ProviderJob("job-1", "render", {}))
            changed = provider.reconfigure(NetworkSettings(ca_bundle=ca_file, proxy_url=proxy.url))
            same = provider.reconfigure(NetworkSettings(ca_bundle=ca_file, proxy_url=proxy.url))
            second = await provider.status(first.provider_job_id)
            return changed, same, second
        finally:
            await provider.close()

    changed, same, second = asyncio.run(scenario())
    assert (changed, same, second.status) == (True, False, "queued")
    assert len(proxy.tunnels) == 1


def test_precedence_provider_then_global_then_default(tmp_path):
    settings = Settings(
        ORCHESTRATOR_HTTP_TIMEOUT="60",
        ORCHESTRATOR_SSL_VERIFY="false",
        ORCHESTRATOR_CA_BUNDLE=str(tmp_path / "global.pem"),
    )
    bare = ProviderSection(base_url="https://x.example")
    assert effective_network(bare, settings) == NetworkSettings(
        60.0, False, str(tmp_path / "global.pem"), None
    )
    own = ProviderSection(
        base_url="https://x.example", http_timeout=5, ssl_verify=True, ssl_ca_bundle="/own.pem"
    )
    assert effective_network(own, settings) == NetworkSettings(5.0, True, "/own.pem", None)
    legacy = ProviderSection(base_url="https://x.example", timeout_seconds=7)
    assert effective_network(legacy, Settings()).timeout == 7.0
    assert effective_network(bare, Settings()).timeout == 30.0
