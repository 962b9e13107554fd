"""Settings: seed names, one-line errors naming variable, value and what is accepted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.config import ACCEPTED, Settings, load_settings
from orchestrator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ACCEPTED:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_seed_defaults():
    """Batch 50, flush every 5 s, INFO, database logging off unless asked, 48 h retention."""
    settings = load_settings(env_file=None)
    assert (settings.db_log_batch_size, settings.db_log_flush_interval, settings.db_log_level) == (
        50,
        5.0,
        "INFO",
    )
    assert settings.enable_db_logging is False and settings.db_logging_required is False
    assert settings.log_retention_hours == 48
    assert settings.uses_embedded


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("DB_LOG_BATCH_SIZE", "abc", "an integer from 1 to 10000"),
        ("DB_LOG_BATCH_SIZE", "0", "an integer from 1 to 10000"),
        ("DB_LOG_FLUSH_INTERVAL", "-1", "a number of seconds above 0"),
        ("DB_LOG_LEVEL", "verbose", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("ENABLE_DB_LOGGING", "maybe", "true or false"),
        ("DB_LOGGING_REQUIRED", "2", "true or false"),
        ("DATABASE_URL", "mysql://db/x", "a URL starting with postgresql://"),
        ("SUPABASE_URL", "abcd.supabase.co", "the project URL"),
        ("LOG_RETENTION_HOURS", "0", "an integer from 1 to 8784"),
    ],
)
def test_invalid_value_is_one_line_naming_variable_value_and_accepted(
    monkeypatch, name, value, accepted
):
    """The error names the variable, repeats the value and says what is accepted."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings(env_file=None)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"invalid setting {name}=")
    assert accepted in message


def test_secret_key_is_never_shown(monkeypatch):
    """The service_role key stays out of reprs and logs of the settings."""
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "eyJ-very-secret")
    settings = load_settings(env_file=None)
    assert "eyJ-very-secret" not in repr(settings) and "eyJ-very-secret" not in str(settings)
    assert settings.supabase_service_role_key is not None
    assert settings.supabase_service_role_key.get_secret_value() == "eyJ-very-secret"


def test_dotenv_file_is_read(tmp_path):
    """Settings come from .env as well as the environment."""
    env = tmp_path / ".env"
    env.write_text("DB_LOG_BATCH_SIZE=123\nORCHESTRATOR_INSTANCE_ID=orch-main\n")
    settings = load_settings(env_file=env)
    assert (settings.db_log_batch_size, settings.orchestrator_instance_id) == (123, "orch-main")


def test_database_url_turns_off_the_embedded_default(monkeypatch):
    """DATABASE_URL (or Supabase settings) means no embedded server."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example:5432/hub")
    assert not load_settings(env_file=None).uses_embedded


def test_every_setting_has_an_accepted_text_and_a_line_in_env_example():
    """.env.example, the error texts and the Settings class list the same names."""
    names = {str(f.validation_alias) for f in Settings.model_fields.values()}
    assert names == set(ACCEPTED)
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert names <= listed
