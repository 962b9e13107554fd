"""AWS Secrets Manager (moto's real local server) and Vault (the real hvac client against
tests/support/fake_vault.py) as secrets providers: order, TTL, outages, no value leaked."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from orchestrator.config import Settings
from orchestrator.secrets import EnvSecrets, FileSecrets, SecretsError, SecretsManager
from orchestrator.secrets import manager as manager_module
from orchestrator.secrets.aws import AwsSecrets
from orchestrator.secrets.manager import build_secrets_manager
from orchestrator.secrets.remote import STALE_LIMIT
from orchestrator.secrets.vault import VaultSecrets
from tests.support.fake_vault import FakeVault
from tests.support.hubserver import HubServer, free_port

AWS_VALUE = "hf-from-aws-7c1e0b55d2"
VAULT_VALUE = "hf-from-vault-91aa3f40e6"
VAULT_TOKEN = "s.vault-token-3b9d11a7c2"
SECRET_VALUES = (AWS_VALUE, VAULT_VALUE, VAULT_TOKEN, "token-from-vault-5e2f")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedMotoServer]:
    """moto's server on a free port, boto3 pointed at it through the standard variables."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield server
    finally:
        server.stop()


def put_aws_secret(name: str, data: dict[str, Any]) -> None:
    client = boto3.client("secretsmanager")
    try:
        client.put_secret_value(SecretId=name, SecretString=json.dumps(data))
    except client.exceptions.ResourceNotFoundException:
        client.create_secret(Name=name, SecretString=json.dumps(data))


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault(VAULT_TOKEN) as server:
        yield server


def test_aws_secret_resolves_normalised_and_rotates_after_the_ttl(moto):
    put_aws_secret("hub/prod", {"hf-token": AWS_VALUE, "replicate.api.token": 42})
    clock = Clock()
    aws = AwsSecrets("hub/prod", ttl=300, clock=clock)
    assert aws.get("HF_TOKEN") == AWS_VALUE
    assert aws.get("REPLICATE_API_TOKEN") == "42"
    assert aws.get("MISSING") is None
    put_aws_secret("hub/prod", {"hf-token": "rotated-value-1"})
    clock.now += 299
    assert aws.get("HF_TOKEN") == AWS_VALUE  # cached
    clock.now += 2
    assert aws.get("HF_TOKEN") == AWS_VALUE  # still answering while a thread refreshes
    aws.wait_idle()
    assert aws.get("HF_TOKEN") == "rotated-value-1"
    assert "hub/prod" in aws.describe() and "127.0.0.1" in aws.describe()


def test_the_ops_spelling_of_the_endpoint_variable_is_honoured(moto, monkeypatch):
    """boto3 reads AWS_ENDPOINT_URL_SECRETS_MANAGER; the hub also takes
    AWS_ENDPOINT_URL_SECRETSMANAGER (OPS 13's name), which boto3 ignores."""
    put_aws_secret("hub/prod", {"HF_TOKEN": AWS_VALUE})
    endpoint = os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    monkeypatch.delenv("AWS_ENDPOINT_URL_SECRETS_MANAGER")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETSMANAGER", endpoint)
    assert AwsSecrets("hub/prod").get("HF_TOKEN") == AWS_VALUE


def test_aws_errors_are_one_line_without_values(moto):
    with pytest.raises(
        SecretsError, match="refused reading AWS secret 'nope': ResourceNotFoundException"
    ):
        AwsSecrets("nope").get("HF_TOKEN")
    boto3.client("secretsmanager").create_secret(Name="list", SecretString=json.dumps([AWS_VALUE]))
    with pytest.raises(SecretsError, match="must hold a JSON object") as error:
        AwsSecrets("list").get("HF_TOKEN")
    assert AWS_VALUE not in str(error.value)


def test_aws_outage_serves_the_last_good_value_and_says_degraded(moto):
    put_aws_secret("hub/prod", {"HF_TOKEN": AWS_VALUE})
    clock = Clock()
    aws = AwsSecrets("hub/prod", ttl=10, clock=clock)
    manager = SecretsManager([EnvSecrets("NO_SUCH_PREFIX_"), aws], ttl=10, clock=clock)
    assert manager.get("HF_TOKEN") == AWS_VALUE and manager.degraded() == {}
    moto.stop()
    clock.now += 11
    assert manager.get("HF_TOKEN") == AWS_VALUE  # at once: the refresh runs on a thread
    aws.wait_idle()
    reason = manager.degraded()["aws"]
    assert "unreachable" in reason and "serving the values fetched 11 s ago" in reason
    assert AWS_VALUE not in reason and manager.errors() == {}
    clock.now += STALE_LIMIT  # past the hour: no more stale answers
    assert manager.get("HF_TOKEN") is None
    assert "unreachable" in manager.errors()["aws"] and manager.degraded() == {}


def test_vault_kv2_through_hvac(vault):
    vault.put("orchestrator", {"HF_TOKEN": VAULT_VALUE, "cloud-webhook-secret": "w"})
    provider = VaultSecrets(vault.url, VAULT_TOKEN)
    assert provider.get("HF_TOKEN") == VAULT_VALUE
    assert provider.get("CLOUD_WEBHOOK_SECRET") == "w"
    assert vault.requests[-1] == ("GET", "/v1/secret/data/orchestrator", VAULT_TOKEN)
    assert VAULT_TOKEN not in provider.describe()


def test_vault_kv1_only_when_configured_and_no_silent_fallback(vault):
    vault.kv_version = 1
    vault.put("team/hub", {"HF_TOKEN": VAULT_VALUE})
    assert (
        VaultSecrets(vault.url, VAULT_TOKEN, path="team/hub", kv_version=1).get("HF_TOKEN")
        == VAULT_VALUE
    )
    with pytest.raises(SecretsError, match=r"secret/team/hub \(KV v2\) does not exist"):
        VaultSecrets(vault.url, VAULT_TOKEN, path="team/hub").get("HF_TOKEN")
    assert vault.requests[-1][1] == "/v1/secret/data/team/hub"  # v2 asked, v1 never retried


def test_vault_refusals_name_the_cause_never_the_token(vault):
    vault.put("orchestrator", {"HF_TOKEN": VAULT_VALUE})
    with pytest.raises(SecretsError, match="permission denied") as denied:
        VaultSecrets(vault.url, "wrong-token").get("HF_TOKEN")
    vault.sealed = True
    with pytest.raises(SecretsError, match="Vault error reading") as sealed:
        VaultSecrets(vault.url, VAULT_TOKEN).get("HF_TOKEN")
    for error in (denied.value, sealed.value):
        assert VAULT_TOKEN not in str(error) and VAULT_VALUE not in str(error)


def test_order_env_then_file_then_aws_then_vault(moto, vault, tmp_path, monkeypatch):
    put_aws_secret("hub/prod", {"A": "aws-a", "B": "aws-b", "C": "aws-c"})
    vault.put("orchestrator", {"A": "vault-a", "B": "vault-b", "C": "vault-c", "D": "vault-d"})
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"A": "file-a", "B": "file-b"}))
    secrets_file.chmod(0o600)
    monkeypatch.setenv("HUBTEST_A", "env-a")
    settings = Settings(
        ORCHESTRATOR_SECRETS_FILE=str(secrets_file),
        ORCHESTRATOR_SECRETS_ENV_PREFIX="HUBTEST_",
        ORCHESTRATOR_AWS_SECRET_NAME="hub/prod",
        VAULT_ADDR=vault.url,
        VAULT_TOKEN=VAULT_TOKEN,
    )
    manager = build_secrets_manager(settings)
    assert [p.name for p in manager.providers] == ["env", "file", "aws", "vault"]
    found = {n: manager.resolve(n) for n in "ABCD"}
    assert {n: (r.provider, r.value.get_secret_value()) for n, r in found.items() if r} == {
        "A": ("env", "env-a"),
        "B": ("file", "file-b"),
        "C": ("aws", "aws-c"),
        "D": ("vault", "vault-d"),
    }
    assert isinstance(FileSecrets(secrets_file).load(), dict)


def test_a_configured_provider_without_its_library_is_one_line(monkeypatch, caplog):
    real = manager_module.importlib.util.find_spec
    monkeypatch.setattr(
        manager_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "hvac" else real(name, *a),
    )
    with caplog.at_level(logging.WARNING, "orchestrator.secrets"):
        manager = build_secrets_manager(Settings(VAULT_ADDR="http://127.0.0.1:1"))
    assert manager.get("HF_TOKEN") is None
    assert manager.errors()["vault"].endswith("pip install 'orchestrator-hub[vault]'")
    assert [r.getMessage() for r in caplog.records] == [manager.errors()["vault"]]


def test_no_secret_value_reaches_a_log_record(moto, vault, caplog):
    """Every logger at DEBUG (botocore's response bodies included) while both providers
    fetch, fail and serve stale values: no value and no token in any record."""
    put_aws_secret("hub/prod", {"HF_TOKEN": AWS_VALUE})
    vault.put("orchestrator", {"HF_TOKEN": VAULT_VALUE})
    clock = Clock()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger().setLevel(logging.DEBUG)
        aws = AwsSecrets("hub/prod", ttl=1, clock=clock)
        hv = VaultSecrets(vault.url, VAULT_TOKEN, ttl=1, clock=clock)
        for provider in (aws, hv):
            provider.get("HF_TOKEN")
            # the quieted loggers, forced to DEBUG as a careless program might
            for name in ("botocore", "boto3", "urllib3", "hvac"):
                logging.getLogger(name).setLevel(logging.DEBUG)
        assert aws.get("HF_TOKEN") == AWS_VALUE
        moto.stop()
        vault.stop()
        clock.now += 2
        assert aws.get("HF_TOKEN") == AWS_VALUE and hv.get("HF_TOKEN") == VAULT_VALUE
        aws.wait_idle()
        hv.wait_idle()
        assert aws.problem() and hv.problem()
    for name in ("botocore", "boto3", "urllib3", "hvac"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in caplog.records)
    assert caplog.records  # something was logged at DEBUG
    for secret in SECRET_VALUES:
        assert secret not in text


def test_health_says_degraded_while_vault_is_down_and_the_token_still_works(
    db_url: str, tmp_path: Path
):
    """`orchestrator serve` with its admin token in Vault: Vault goes away, the admin API
    keeps accepting the token (last good value) and /health reports secrets degraded,
    naming the provider, without the token anywhere in its body or the server's output."""
    token = "token-from-vault-5e2f"
    with FakeVault(VAULT_TOKEN) as fake:
        fake.put("orchestrator", {"ORCHESTRATOR_API_TOKEN": token})
        with HubServer(
            tmp_path,
            "--no-daemon",
            DATABASE_URL=db_url,
            VAULT_ADDR=fake.url,
            VAULT_TOKEN=VAULT_TOKEN,
            ORCHESTRATOR_SECRETS_TTL="1",
        ) as hub:
            auth = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{hub.url}/api/audit/types", headers=auth).status_code == 200
            healthy = httpx.get(f"{hub.url}/health").json()
            assert _secrets_component(healthy)["status"] == "healthy"
            fake.stop()
            import time

            time.sleep(1.5)  # past the TTL: the next use re-fetches and fails
            assert httpx.get(f"{hub.url}/api/audit/types", headers=auth).status_code == 200
            time.sleep(1.1)  # the health report is cached for a second
            body = httpx.get(f"{hub.url}/health")
            component = _secrets_component(body.json())
            assert body.status_code == 200
            assert component["status"] == "degraded"
            assert component["message"].startswith("vault: Vault at ")
            assert token not in body.text and VAULT_TOKEN not in body.text
        assert token not in hub.output() and VAULT_TOKEN not in hub.output()


def _secrets_component(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["components"] if c["name"] == "secrets")


def test_secrets_check_names_the_remote_providers_never_values(vault, tmp_path):
    """`orchestrator secrets check` lists vault among the providers and says which names
    it answers, without printing a value or the token."""
    import subprocess
    import sys

    from tests.support.hubserver import clean_env

    vault.put("orchestrator", {"HF_TOKEN": VAULT_VALUE})
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "secrets", "check"],
        env=clean_env(
            VAULT_ADDR=vault.url,
            VAULT_TOKEN=VAULT_TOKEN,
            ORCHESTRATOR_SECRETS_FILE=str(tmp_path / "none.json"),
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"provider vault: Vault KV v2 {vault.url} secret/orchestrator" in done.stdout
    assert any("HF_TOKEN" in line and "vault" in line for line in done.stdout.splitlines())
    for secret in (VAULT_VALUE, VAULT_TOKEN):
        assert secret not in done.stdout + done.stderr
