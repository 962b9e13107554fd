"""Every setting of the hub, read once from the environment and ``.env``.

One place for every environment name, so ``.env.example``, the README table and the code
cannot drift apart. The names the seed orchestrator defined (``ENABLE_DB_LOGGING``,
``DB_LOG_*``, ``ORCHESTRATOR_INSTANCE_ID``) keep their meaning.
"""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.errors import ConfigError
from orchestrator.netaddr import IPNetwork, parse_trusted_proxies

LogLevelName = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "text"]


def _default_instance_id() -> str:
    return f"orchestrator-{socket.gethostname()}"


def default_storage_dir() -> Path:
    """Where uploaded objects live unless ``ORCHESTRATOR_STORAGE_DIR`` says."""
    return Path(platformdirs.user_data_dir("orchestrator-hub")) / "outputs"


def default_embedded_data_dir() -> Path:
    """Where the embedded PostgreSQL keeps its data unless ``EMBEDDED_PG_DATA_DIR`` says."""
    return Path(platformdirs.user_data_dir("orchestrator-hub")) / "postgres"


class Settings(BaseSettings):
    """The hub's configuration; see ``.env.example`` for one line on each setting."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    supabase_url: str | None = Field(default=None, validation_alias="SUPABASE_URL")
    supabase_service_role_key: SecretStr | None = Field(
        default=None, validation_alias="SUPABASE_SERVICE_ROLE_KEY"
    )
    embedded_pg_data_dir: Path | None = Field(default=None, validation_alias="EMBEDDED_PG_DATA_DIR")

    enable_db_logging: bool = Field(default=False, validation_alias="ENABLE_DB_LOGGING")
    db_log_level: LogLevelName = Field(default="INFO", validation_alias="DB_LOG_LEVEL")
    db_log_batch_size: int = Field(
        default=50, ge=1, le=10_000, validation_alias="DB_LOG_BATCH_SIZE"
    )
    db_log_flush_interval: float = Field(
        default=5.0, gt=0, le=3600, validation_alias="DB_LOG_FLUSH_INTERVAL"
    )
    db_logging_required: bool = Field(default=False, validation_alias="DB_LOGGING_REQUIRED")
    orchestrator_instance_id: str = Field(
        default_factory=_default_instance_id,
        min_length=1,
        max_length=255,
        validation_alias="ORCHESTRATOR_INSTANCE_ID",
    )
    db_log_buffer_size: int = Field(
        default=10_000, ge=100, le=1_000_000, validation_alias="DB_LOG_BUFFER_SIZE"
    )
    db_log_buffer_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        le=16 * 1024**3,
        validation_alias="DB_LOG_BUFFER_BYTES",
    )
    log_level: LogLevelName = Field(default="INFO", validation_alias="ORCHESTRATOR_LOG_LEVEL")
    log_format: LogFormat = Field(default="text", validation_alias="ORCHESTRATOR_LOG_FORMAT")
    log_file: Path | None = Field(default=None, validation_alias="ORCHESTRATOR_LOG_FILE")
    log_retention_hours: int = Field(
        default=48, ge=1, le=24 * 366, validation_alias="LOG_RETENTION_HOURS"
    )
    job_retention_days: int = Field(
        default=30, ge=1, le=36_600, validation_alias="JOB_RETENTION_DAYS"
    )
    # The orchestrator daemon (`orchestrator run`); the rest of its settings are in its
    # YAML file (orchestrator/daemon/config.py), these override it from the environment.
    daemon_config_file: Path | None = Field(default=None, validation_alias="ORCHESTRATOR_CONFIG")
    job_poll_interval: float | None = Field(
        default=None, gt=0, le=86_400, validation_alias="ORCHESTRATOR_JOB_POLL_INTERVAL"
    )
    poll_only: bool | None = Field(default=None, validation_alias="ORCHESTRATOR_POLL_ONLY")
    # `orchestrator serve` (the HTTP face); the admin token is a secret, resolved by
    # orchestrator.secrets (environment, then the secrets file), never a plain setting.
    http_host: str = Field(
        default="127.0.0.1", min_length=1, validation_alias="ORCHESTRATOR_HTTP_HOST"
    )
    http_port: int = Field(default=8080, ge=1, le=65535, validation_alias="ORCHESTRATOR_HTTP_PORT")
    public_url: str | None = Field(default=None, validation_alias="ORCHESTRATOR_PUBLIC_URL")
    ssl_cert: Path | None = Field(default=None, validation_alias="ORCHESTRATOR_SSL_CERT")
    ssl_key: Path | None = Field(default=None, validation_alias="ORCHESTRATOR_SSL_KEY")
    secrets_file: Path | None = Field(default=None, validation_alias="ORCHESTRATOR_SECRETS_FILE")
    secrets_ttl: float = Field(
        default=300, ge=0, le=86_400, validation_alias="ORCHESTRATOR_SECRETS_TTL"
    )
    secrets_env_prefix: str = Field(default="", validation_alias="ORCHESTRATOR_SECRETS_ENV_PREFIX")
    audit_retention_days: int = Field(
        default=365, ge=1, le=36_500, validation_alias="AUDIT_RETENTION_DAYS"
    )
    metrics_db_cache_seconds: float = Field(
        default=10, ge=0, le=3600, validation_alias="ORCHESTRATOR_METRICS_DB_CACHE_SECONDS"
    )
    duty_stale_after: float | None = Field(
        default=None, gt=0, le=86_400, validation_alias="ORCHESTRATOR_DUTY_STALE_AFTER"
    )
    # Outbound calls to providers (OPS §12): a provider's own setting wins over these;
    # HTTPS_PROXY / HTTP_PROXY / NO_PROXY / SSL_CERT_FILE are read by httpx itself.
    provider_http_timeout: float = Field(
        default=30, gt=0, le=600, validation_alias="ORCHESTRATOR_HTTP_TIMEOUT"
    )
    provider_ssl_verify: bool = Field(default=True, validation_alias="ORCHESTRATOR_SSL_VERIFY")
    provider_ca_bundle: Path | None = Field(default=None, validation_alias="ORCHESTRATOR_CA_BUNDLE")
    # Backup and restore (orchestrator.backup, OPS 14).
    backup_dir: Path | None = Field(default=None, validation_alias="ORCHESTRATOR_BACKUP_DIR")
    pg_dump: Path | None = Field(default=None, validation_alias="ORCHESTRATOR_PG_DUMP")
    # Remote secrets providers (orchestrator.secrets.aws / .vault, OPS 13).
    aws_secret_name: str | None = Field(
        default=None, validation_alias="ORCHESTRATOR_AWS_SECRET_NAME"
    )
    vault_addr: str | None = Field(default=None, validation_alias="VAULT_ADDR")
    vault_token: SecretStr | None = Field(default=None, validation_alias="VAULT_TOKEN")
    vault_cacert: Path | None = Field(default=None, validation_alias="VAULT_CACERT")
    vault_path: str = Field(default="orchestrator", validation_alias="ORCHESTRATOR_VAULT_PATH")
    vault_mount: str = Field(default="secret", validation_alias="ORCHESTRATOR_VAULT_MOUNT")
    vault_kv_version: Literal[1, 2] = Field(
        default=2, validation_alias="ORCHESTRATOR_VAULT_KV_VERSION"
    )
    # The event stream (GET /api/events/stream): how often each open stream reads
    # job_events, and the comment line that keeps idle connections (and proxies) open.
    events_poll_interval: float = Field(
        default=1.0, ge=0.05, le=60, validation_alias="ORCHESTRATOR_EVENTS_POLL_INTERVAL"
    )
    events_heartbeat: float = Field(
        default=15.0, ge=0.1, le=300, validation_alias="ORCHESTRATOR_EVENTS_HEARTBEAT"
    )
    # The S3-compatible upload endpoint (orchestrator/server/storage/) and the job
    # credentials handed out with ORCHESTRATOR_PUBLIC_URL as the endpoint (OPS §15).
    storage_dir: Path = Field(
        default_factory=default_storage_dir, validation_alias="ORCHESTRATOR_STORAGE_DIR"
    )
    storage_bucket: str = Field(
        default="outputs",
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        validation_alias="ORCHESTRATOR_STORAGE_BUCKET",
    )
    storage_max_object_bytes: int = Field(
        default=5 * 1024**3,
        ge=1,
        le=5 * 1024**4,
        validation_alias="ORCHESTRATOR_STORAGE_MAX_OBJECT_BYTES",
    )
    storage_min_free_bytes: int = Field(
        default=256 * 1024**2, ge=0, validation_alias="ORCHESTRATOR_STORAGE_MIN_FREE_BYTES"
    )
    storage_max_upload_bytes: int = Field(
        default=5 * 1024**4,
        ge=1,
        le=5 * 1024**4,
        validation_alias="ORCHESTRATOR_STORAGE_MAX_UPLOAD_BYTES",
    )
    storage_multipart_expiry_hours: int = Field(
        default=168, ge=1, le=87_600, validation_alias="ORCHESTRATOR_STORAGE_MULTIPART_EXPIRY_HOURS"
    )
    storage_credential_ttl: int = Field(
        default=7 * 86_400,
        ge=60,
        le=31 * 86_400,
        validation_alias="ORCHESTRATOR_STORAGE_CREDENTIAL_TTL",
    )
    # Inbound protection (README "Reverse proxies and trusted proxies", "Rate limiting").
    trusted_proxies: str = Field(default="", validation_alias="ORCHESTRATOR_TRUSTED_PROXIES")
    rate_limit_calls: int = Field(default=100, ge=0, le=10_000, validation_alias="RATE_LIMIT_CALLS")
    rate_limit_period: float = Field(
        default=60, ge=0.1, le=86_400, validation_alias="RATE_LIMIT_PERIOD"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, le=1024**4, validation_alias="ORCHESTRATOR_MAX_BODY_BYTES"
    )

    @field_validator("db_log_level", "log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("job_poll_interval", "poll_only", "duty_stale_after", mode="before")
    @classmethod
    def _blank_daemon_setting_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "log_file",
        "embedded_pg_data_dir",
        "daemon_config_file",
        "ssl_cert",
        "ssl_key",
        "secrets_file",
        "provider_ca_bundle",
        "backup_dir",
        "pg_dump",
        "vault_cacert",
        mode="before",
    )
    @classmethod
    def _blank_path_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("storage_dir", mode="before")
    @classmethod
    def _blank_storage_dir_is_default(cls, value: object) -> object:
        return default_storage_dir() if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "database_url",
        "supabase_url",
        "public_url",
        "aws_secret_name",
        "vault_addr",
        "vault_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a URL starting with postgresql:// or postgres://")
        return value

    @field_validator("supabase_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("expected a URL starting with https:// or http://")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            parse_trusted_proxies(value)
        except ConfigError as error:
            raise ValueError(str(error).partition(": ")[2]) from None
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        """``ORCHESTRATOR_TRUSTED_PROXIES`` as networks (validated when read)."""
        return parse_trusted_proxies(self.trusted_proxies)

    @property
    def uses_embedded(self) -> bool:
        """True when no database is configured and the hub runs its own PostgreSQL."""
        return self.database_url is None and self.supabase_url is None

    @property
    def embedded_data_dir(self) -> Path:
        """The embedded server's data directory (the setting, else the user data dir)."""
        return self.embedded_pg_data_dir or default_embedded_data_dir()


# What each setting accepts, in the words the error line uses.
ACCEPTED: dict[str, str] = {
    "DATABASE_URL": "a URL starting with postgresql:// or postgres://",
    "SUPABASE_URL": "the project URL, such as https://abcd.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY": "the service_role key of the Supabase project",
    "EMBEDDED_PG_DATA_DIR": "a directory path",
    "ENABLE_DB_LOGGING": "true or false (also 1/0, yes/no, on/off)",
    "DB_LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "DB_LOG_BATCH_SIZE": "an integer from 1 to 10000",
    "DB_LOG_FLUSH_INTERVAL": "a number of seconds above 0 and at most 3600",
    "DB_LOGGING_REQUIRED": "true or false (also 1/0, yes/no, on/off)",
    "ORCHESTRATOR_INSTANCE_ID": "a non-empty name of at most 255 characters",
    "DB_LOG_BUFFER_SIZE": "an integer from 100 to 1000000 (records)",
    "DB_LOG_BUFFER_BYTES": "an integer from 1048576 to 17179869184 (bytes)",
    "ORCHESTRATOR_LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "ORCHESTRATOR_LOG_FORMAT": "json or text",
    "ORCHESTRATOR_LOG_FILE": "a file path",
    "LOG_RETENTION_HOURS": "an integer from 1 to 8784 (hours)",
    "JOB_RETENTION_DAYS": "an integer from 1 to 36600 (days)",
    "ORCHESTRATOR_CONFIG": "the path of the daemon's YAML config file",
    "ORCHESTRATOR_JOB_POLL_INTERVAL": "a number of seconds above 0 and at most 86400",
    "ORCHESTRATOR_POLL_ONLY": "true or false (also 1/0, yes/no, on/off)",
    "ORCHESTRATOR_HTTP_HOST": "an address to bind, such as 127.0.0.1 or 0.0.0.0",
    "ORCHESTRATOR_HTTP_PORT": "a TCP port from 1 to 65535",
    "ORCHESTRATOR_PUBLIC_URL": "the external base URL, starting with https:// or http://",
    "ORCHESTRATOR_SSL_CERT": "the path of a PEM certificate (chain) file",
    "ORCHESTRATOR_SSL_KEY": "the path of the PEM private key file",
    "ORCHESTRATOR_SECRETS_FILE": "the path of a JSON or YAML secrets file",
    "ORCHESTRATOR_SECRETS_TTL": "a number of seconds from 0 to 86400",
    "ORCHESTRATOR_SECRETS_ENV_PREFIX": "a prefix of secret environment variables, or empty",
    "AUDIT_RETENTION_DAYS": "an integer from 1 to 36500 (days)",
    "ORCHESTRATOR_METRICS_DB_CACHE_SECONDS": "a number of seconds from 0 to 3600",
    "ORCHESTRATOR_DUTY_STALE_AFTER": "a number of seconds above 0 and at most 86400",
    "ORCHESTRATOR_HTTP_TIMEOUT": "a number of seconds above 0 and at most 600",
    "ORCHESTRATOR_SSL_VERIFY": "true or false (also 1/0, yes/no, on/off)",
    "ORCHESTRATOR_CA_BUNDLE": "the path of a PEM file of CA certificates",
    "ORCHESTRATOR_BACKUP_DIR": "the directory that holds backup files",
    "ORCHESTRATOR_PG_DUMP": "the path of a pg_dump binary (pg_restore and psql beside it)",
    "ORCHESTRATOR_VAULT_KV_VERSION": "1 or 2 (the KV secrets engine version of the mount)",
    "ORCHESTRATOR_AWS_SECRET_NAME": "the name or ARN of an AWS Secrets Manager secret",
    "VAULT_ADDR": "the Vault server's URL, such as https://vault.internal:8200",
    "VAULT_TOKEN": "a Vault token",
    "VAULT_CACERT": "the path of the PEM CA certificate that signed Vault's certificate",
    "ORCHESTRATOR_VAULT_PATH": "the path of the hub's secret in the KV mount",
    "ORCHESTRATOR_VAULT_MOUNT": "the mount point of the KV secrets engine",
    "ORCHESTRATOR_EVENTS_POLL_INTERVAL": "a number of seconds from 0.05 to 60",
    "ORCHESTRATOR_EVENTS_HEARTBEAT": "a number of seconds from 0.1 to 300",
    "ORCHESTRATOR_STORAGE_DIR": "a directory path (created on first upload)",
    "ORCHESTRATOR_STORAGE_BUCKET": "a bucket name: 3-63 characters of a-z, 0-9, '.', '-'",
    "ORCHESTRATOR_STORAGE_MAX_OBJECT_BYTES": "an integer from 1 to 5497558138880 (bytes)",
    "ORCHESTRATOR_STORAGE_MIN_FREE_BYTES": "an integer of bytes, 0 or more",
    "ORCHESTRATOR_STORAGE_CREDENTIAL_TTL": "an integer from 60 to 2678400 (seconds)",
    "ORCHESTRATOR_STORAGE_MAX_UPLOAD_BYTES": "an integer from 1 to 5497558138880 (5 TiB)",
    "ORCHESTRATOR_STORAGE_MULTIPART_EXPIRY_HOURS": "an integer from 1 to 87600 (hours)",
    "ORCHESTRATOR_TRUSTED_PROXIES": "comma-separated IPv4/IPv6 addresses or CIDRs, such as "
    "10.0.0.1, 10.0.0.0/8, fd00::/8 (empty: no proxy is trusted)",
    "RATE_LIMIT_CALLS": "an integer from 0 (rate limiting off) to 10000 (requests per period)",
    "RATE_LIMIT_PERIOD": "a number of seconds from 0.1 to 86400",
    "ORCHESTRATOR_MAX_BODY_BYTES": "an integer from 1024 to 1099511627776 (bytes)",
}
# Settings whose own validator names the offending entry: its line is kept as it is.
_OWN_LINE = frozenset({"ORCHESTRATOR_TRUSTED_PROXIES"})


def _describe(error: ValidationError) -> str:
    """Turns pydantic's report into one line: variable, value given, what is accepted."""
    first = error.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "?"
    if name in _OWN_LINE and first.get("type") == "value_error":
        return f"invalid setting {name}: {first['ctx']['error']}"
    accepted = ACCEPTED.get(name, first["msg"])
    value = "<secret>" if name.endswith(("_KEY", "_TOKEN")) else repr(first.get("input"))
    return f"invalid setting {name}={value}: expected {accepted}"


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Reads the settings, raising :class:`ConfigError` with one line when one is invalid."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
