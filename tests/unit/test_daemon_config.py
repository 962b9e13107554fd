"""The daemon's YAML config: the seed's shape and defaults, env overrides, one-line errors."""

from __future__ import annotations

import pytest

from orchestrator.config import load_settings
from orchestrator.daemon.config import EnterpriseConfig, load_enterprise_config, parse_config
from orchestrator.errors import ConfigError

SEED_EXAMPLE = """
background:
  job_status_polling:
    enabled: true
    interval_seconds: 30
  queue_processing:
    enabled: true
    interval_seconds: 5
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("ORCHESTRATOR_CONFIG", "ORCHESTRATOR_JOB_POLL_INTERVAL", "ORCHESTRATOR_POLL_ONLY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./orchestrator.yaml unless a test writes one


def test_the_seed_example_and_the_defaults():
    """The seed's file reads as written; without a file: queue every 5 s, polling off
    (no provider lacks a webhook), approvals every 5 min, hourly log maintenance."""
    config = EnterpriseConfig(parse_config(SEED_EXAMPLE))
    assert (config.job_polling_enabled, config.job_polling_interval) == (True, 30)
    assert (config.queue_processing_enabled, config.queue_processing_interval) == (True, 5)
    defaults = load_enterprise_config(settings=load_settings(env_file=None))
    assert defaults.job_polling_enabled is False
    assert defaults.queue_processing_interval == 5
    assert defaults.approval_expiration_interval == 300
    assert defaults.log_maintenance_interval == 3600
    assert defaults.log_maintenance_enabled is None
    assert defaults.poll_only is False


def test_polling_switches_on_when_a_provider_has_no_webhook():
    """Auto-enable: one provider without webhook_url turns polling on; all with one, off;
    an explicit `enabled: false` wins."""
    with_hook = "providers:\n  a: {base_url: 'http://a', webhook_url: 'https://hub/hook'}\n"
    without = "providers:\n  b: {base_url: 'http://b'}\n"
    assert EnterpriseConfig(parse_config(with_hook)).job_polling_enabled is False
    assert EnterpriseConfig(parse_config(without)).job_polling_enabled is True
    off = without + "background:\n  job_status_polling: {enabled: false}\n"
    assert EnterpriseConfig(parse_config(off)).job_polling_enabled is False


def test_environment_overrides_the_file(monkeypatch, tmp_path):
    """ORCHESTRATOR_JOB_POLL_INTERVAL and ORCHESTRATOR_POLL_ONLY win over the file,
    which ORCHESTRATOR_CONFIG names."""
    path = tmp_path / "hub.yaml"
    path.write_text(SEED_EXAMPLE + "    poll_only: false\n")
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(path))
    monkeypatch.setenv("ORCHESTRATOR_JOB_POLL_INTERVAL", "60")
    monkeypatch.setenv("ORCHESTRATOR_POLL_ONLY", "true")
    config = load_enterprise_config(settings=load_settings(env_file=None))
    assert (config.job_polling_interval, config.poll_only) == (60, True)


def test_default_file_in_the_working_directory_is_read(tmp_path):
    """./orchestrator.yaml is read when no file is named."""
    (tmp_path / "orchestrator.yaml").write_text(
        "background:\n  queue_processing: {interval_seconds: 2}\n"
    )
    config = load_enterprise_config(settings=load_settings(env_file=None))
    assert config.queue_processing_interval == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "background:\n  job_status_polling:\n    interval_seconds: soon\n",
            "background.job_status_polling.interval_seconds='soon': expected a number of "
            "seconds above 0 and at most 86400",
        ),
        (
            "background:\n  queue_processing: {interval_seconds: -5}\n",
            "background.queue_processing.interval_seconds=-5: expected a number of seconds",
        ),
        (
            "background:\n  job_status_polling: {enabled: perhaps}\n",
            "background.job_status_polling.enabled='perhaps': expected true or false",
        ),
        (
            "background:\n  job_status_poling: {enabled: true}\n",
            "unknown key background.job_status_poling; accepted here: job_status_polling, "
            "queue_processing",
        ),
        (
            "providers:\n  cloud: {base_url: 'ftp://x'}\n",
            "providers.cloud.base_url='ftp://x': expected an http:// or https:// URL",
        ),
        ("providers:\n  cloud: {}\n", "providers.cloud.base_url is required"),
        ("background: [1, 2\n", "not valid YAML at line"),
        ("- a\n- b\n", "expected a mapping with the keys background and providers"),
    ],
)
def test_a_bad_file_is_one_line_naming_key_value_and_what_is_accepted(text, expected):
    """Each mistake is one ConfigError line with the key path, the value and the rule."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "hub.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("invalid config hub.yaml: ")
    assert expected in message


def test_an_unreadable_file_is_one_line(tmp_path):
    """A missing file names the path and what is expected."""
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing\.yaml"):
        load_enterprise_config(tmp_path / "missing.yaml", settings=load_settings(env_file=None))


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("ORCHESTRATOR_JOB_POLL_INTERVAL", "-1", "a number of seconds above 0 and at most 86400"),
        ("ORCHESTRATOR_POLL_ONLY", "sometimes", "true or false (also 1/0, yes/no, on/off)"),
    ],
)
def test_a_bad_daemon_setting_is_one_line(monkeypatch, name, value, accepted):
    """The daemon's environment overrides are checked like every other setting."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert str(caught.value) == f"invalid setting {name}={value!r}: expected {accepted}"


def test_transaction_pooler_ports_imply_poll_only():
    """Supavisor's transaction port 6543 and PgBouncer's 6432 are recognised; 5432 and
    the embedded server's socket URL are not."""
    from orchestrator.db.target import behind_transaction_pooler as looks_like_transaction_pooler

    assert looks_like_transaction_pooler("postgresql://u:p@aws-0.pooler.supabase.com:6543/postgres")
    assert looks_like_transaction_pooler("postgresql://u@127.0.0.1:6432/db")
    assert not looks_like_transaction_pooler("postgresql://u@db.example.com:5432/db")
    assert not looks_like_transaction_pooler("postgresql://postgres:@/hub?host=/tmp/pg")
