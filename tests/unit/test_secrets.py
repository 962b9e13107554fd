"""Secrets: the environment first, then a private file; answers cached for a TTL (misses
for at most 30 s); a file others may read is refused; values never shown."""

from __future__ import annotations

import json
import os
import stat

import pytest

from orchestrator.secrets import (
    EnvSecrets,
    FileSecrets,
    SecretsError,
    SecretsManager,
    normalise_name,
    write_secret,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def private_file(path, data) -> None:
    path.write_text(json.dumps(data))
    path.chmod(0o600)


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    """Seed order: env > file; the provider that answered is reported, not the value."""
    secrets = tmp_path / "secrets.json"
    private_file(secrets, {"HF_TOKEN": "from-file", "cloud-webhook.secret": "whsec_file"})
    monkeypatch.setenv("HF_TOKEN", "from-env")
    manager = SecretsManager([EnvSecrets(), FileSecrets(secrets)])
    assert manager.get("hf-token") == "from-env"
    assert manager.resolve("CLOUD_WEBHOOK_SECRET").provider == "file"
    assert manager.get("cloud_webhook_secret") == "whsec_file"
    assert "from-env" not in repr(manager.resolve("HF_TOKEN"))


def test_values_are_cached_for_the_ttl_and_misses_for_30_seconds(tmp_path, monkeypatch):
    """A rotated value is seen after the TTL; a newly added one within 30 s (the seed
    cached misses forever)."""
    clock = Clock()
    manager = SecretsManager([EnvSecrets()], ttl=300, clock=clock)
    monkeypatch.delenv("ROTATED", raising=False)
    assert manager.get("ROTATED") is None
    monkeypatch.setenv("ROTATED", "v1")
    clock.now += 29
    assert manager.get("ROTATED") is None
    clock.now += 2
    assert manager.get("ROTATED") == "v1"
    monkeypatch.setenv("ROTATED", "v2")
    clock.now += 299
    assert manager.get("ROTATED") == "v1"
    clock.now += 2
    assert manager.get("ROTATED") == "v2"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_may_read_is_refused_with_one_line(tmp_path, mode):
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("ORCHESTRATOR_API_TOKEN: tok-123\n")
    secrets.chmod(mode)
    provider = FileSecrets(secrets)
    with pytest.raises(SecretsError) as refused:
        provider.get("ORCHESTRATOR_API_TOKEN")
    assert str(refused.value) == (
        f"refusing secrets file {secrets}: mode {mode:04o} lets other users read it; "
        f"run chmod 600 {secrets}"
    )
    manager = SecretsManager([EnvSecrets(), provider])
    assert manager.get("ORCHESTRATOR_API_TOKEN") is None
    assert "tok-123" not in json.dumps(manager.errors())
    assert "mode" in manager.errors()["file"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must hold a mapping of NAME: value, not a list"),
        ("{not json", "is not valid JSON"),
        ('{"A": {"nested": 1}}', "the value of 'A' must be a string or number"),
        ('{"9lives": "x"}', "invalid secret name '9lives'"),
    ],
)
def test_a_malformed_file_is_one_line(tmp_path, content, message):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(content)
    secrets.chmod(0o600)
    with pytest.raises(SecretsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        FileSecrets(secrets).get("A")


def test_the_file_is_reread_when_it_changes(tmp_path):
    secrets = tmp_path / "secrets.json"
    write_secret(secrets, "A", "1")
    provider = FileSecrets(secrets)
    assert provider.get("A") == "1"
    write_secret(secrets, "A", "22")
    assert provider.get("A") == "22"


def test_write_secret_creates_a_private_file_and_keeps_other_names(tmp_path):
    """Mode 0600 from the first byte (temp file + rename), directory 0700, YAML or JSON."""
    for name in ("secrets.json", "secrets.yaml"):
        path = tmp_path / "conf" / name
        write_secret(path, "first", "one")
        write_secret(path, "SECOND", "two\nlines")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert FileSecrets(path).load() == {"FIRST": "one", "SECOND": "two\nlines"}
        assert [p for p in os.listdir(path.parent) if p.startswith(".secrets-")] == []


def test_write_secret_refuses_to_extend_a_readable_file(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text("{}")
    path.chmod(0o644)
    with pytest.raises(SecretsError, match="chmod 600"):
        write_secret(path, "A", "x")


@pytest.mark.parametrize("name", ["", "1ABC", "A B", "ü", "x" * 129])
def test_bad_names_are_refused(name):
    with pytest.raises(SecretsError, match="invalid secret name"):
        normalise_name(name)
