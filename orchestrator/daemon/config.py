"""The daemon's YAML config file, in the seed's shape, read through one object.

```yaml
background:
  job_status_polling: {enabled: true, interval_seconds: 30}
  queue_processing: {enabled: true, interval_seconds: 5}
providers:
  cloud-a: {type: http, base_url: "https://gpu.example.com/api"}
http:
  rate_limit:
    rules: [{id: renders, pattern: "^/api/cloud/jobs$", calls: 5, period: 60, methods: [POST]}]
```

:func:`get_enterprise_config` (the seed's name) returns an :class:`EnterpriseConfig`
with ``job_polling_enabled`` and ``job_polling_interval``; the environment overrides
the file where the seed did (``ORCHESTRATOR_JOB_POLL_INTERVAL``, via
:class:`~orchestrator.config.Settings`). Job status polling is on by itself when a
provider has no webhook URL (nothing would tell the hub about its jobs otherwise). A bad
file is one line naming the key, the value given and what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.config import Settings, get_settings
from orchestrator.errors import ConfigError
from orchestrator.providers.config import ProviderSection

DEFAULT_CONFIG_FILE = Path("orchestrator.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollingSection(_Section):
    """``background.job_status_polling``; ``enabled`` unset = on when a provider has no
    webhook URL (the seed's auto-enable)."""

    enabled: bool | None = None
    interval_seconds: float = Field(default=30, gt=0, le=86_400)


class QueueSection(_Section):
    """``background.queue_processing``: dispatch to external providers, on NOTIFY and
    every ``interval_seconds``; ``poll_only`` never LISTENs (transaction poolers)."""

    enabled: bool = True
    interval_seconds: float = Field(default=5, gt=0, le=86_400)
    poll_only: bool | None = None
    dispatch_batch: int = Field(default=10, ge=1, le=1000)


class ApprovalSection(_Section):
    """``background.approval_expiration``: expire overdue approval requests."""

    enabled: bool = True
    interval_seconds: float = Field(default=300, gt=0, le=86_400)


class ReapingSection(_Section):
    """``background.worker_reaping``: requeue the jobs of workers that stopped beating."""

    enabled: bool = True
    interval_seconds: float = Field(default=10, gt=0, le=86_400)
    stale_after_seconds: int = Field(default=30, ge=5, le=86_400)


class LogMaintenanceSection(_Section):
    """``background.log_maintenance``: partitions and retention; ``enabled`` unset = only
    where pg_cron does not run them."""

    enabled: bool | None = None
    interval_seconds: float = Field(default=3600, gt=0, le=86_400)


class PeriodicSection(_Section):
    """``background.periodic_jobs``: submit the jobs of due cron ticks."""

    enabled: bool = True
    interval_seconds: float = Field(default=5, gt=0, le=86_400)


class RetentionSection(_Section):
    """``background.job_retention``: delete finished jobs older than JOB_RETENTION_DAYS."""

    enabled: bool = True
    interval_seconds: float = Field(default=3600, gt=0, le=86_400)


class BackgroundSection(_Section):
    """``background``: one section per duty of the daemon."""

    job_status_polling: PollingSection = PollingSection()
    queue_processing: QueueSection = QueueSection()
    approval_expiration: ApprovalSection = ApprovalSection()
    worker_reaping: ReapingSection = ReapingSection()
    log_maintenance: LogMaintenanceSection = LogMaintenanceSection()
    periodic_jobs: PeriodicSection = PeriodicSection()
    job_retention: RetentionSection = RetentionSection()


class RateLimitSection(_Section):
    """``http.rate_limit`` (OPS §9.1): a team's own rules, tried before the built-in
    ones, each ``{id, pattern, calls, period, methods}`` (``methods`` omitted: all);
    ``exempt_cidrs``, client networks never limited; ``ipv6_prefix``, the network one
    IPv6 client key covers. The default rule stays ``RATE_LIMIT_CALLS`` per
    ``RATE_LIMIT_PERIOD``. Rules are checked when ``orchestrator serve`` starts."""

    rules: list[dict[str, Any]] = []
    exempt_cidrs: list[str] = []
    ipv6_prefix: int = Field(default=64, ge=1, le=128)


class HttpSection(_Section):
    """``http``: how ``orchestrator serve`` treats requests."""

    rate_limit: RateLimitSection = RateLimitSection()


class FileConfig(_Section):
    """The whole file."""

    background: BackgroundSection = BackgroundSection()
    providers: dict[str, ProviderSection] = {}
    http: HttpSection = HttpSection()


# What each key accepts, in the words of the error line (by the key's last name).
ACCEPTED: dict[str, str] = {
    "enabled": "true or false",
    "poll_only": "true or false",
    "interval_seconds": "a number of seconds above 0 and at most 86400",
    "stale_after_seconds": "an integer number of seconds from 5 to 86400",
    "dispatch_batch": "an integer from 1 to 1000",
    "type": "http (the local provider needs no entry: its jobs run on `orchestrator worker`)",
    "base_url": "an http:// or https:// URL",
    "webhook_url": "auto, an http:// or https:// URL, or nothing",
    "token_env": "the name of an environment variable holding the API token",
    "timeout_seconds": "a number of seconds above 0 and at most 600",
    "max_retries": "an integer from 0 to 10",
    "status_concurrency": "an integer from 1 to 256",
    "http_timeout": "a number of seconds above 0 and at most 600",
    "ssl_verify": "true or false",
    "ssl_ca_bundle": "the path of a readable PEM file of CA certificates",
    "proxy_url": "an http:// or https:// proxy URL",
    "webhook_require_signature": "true or false",
    "webhook_secret": "the name of the secret holding the webhook signing secret(s)",
    "circuit_open_after": "an integer from 1 to 1000",
    "circuit_half_open_after_seconds": "an integer number of seconds from 1 to 86400",
    "providers": "a mapping of provider names to provider settings",
    "rules": "a list of {id, pattern, calls, period, methods} mappings",
    "exempt_cidrs": "a list of IP addresses or CIDR networks",
    "ipv6_prefix": "an integer from 1 to 128",
}


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _keys_accepted_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys of the section that holds ``loc``'s last key."""
    model: type[BaseModel] = FileConfig
    parts = [str(part) for part in loc[:-1]]
    while parts:
        part = parts.pop(0)
        if model is FileConfig and part == "providers":
            model = ProviderSection
            parts = parts[1:]  # the provider's name
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def describe_error(error: ValidationError, source: str) -> str:
    """pydantic's report as one line: the key, the value given, what is accepted."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = _dotted(loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        accepted = ", ".join(_keys_accepted_at(loc)) or "no other keys"
        return f"invalid config {source}: unknown key {key}; accepted here: {accepted}"
    if first["type"] == "missing":
        return f"invalid config {source}: {key} is required ({ACCEPTED.get(str(loc[-1]), '')})"
    if first["type"] == "value_error":  # our validators' own line (a malformed CIDR...)
        return f"invalid config {source}: {key}: {str(first['msg']).removeprefix('Value error, ')}"
    name = str(loc[-1]) if loc else ""
    accepted = ACCEPTED.get(name, first["msg"])
    return f"invalid config {source}: {key}={first.get('input')!r}: expected {accepted}"


def parse_config(text: str, source: str = "file") -> FileConfig:
    """Parses and validates YAML text, raising :class:`ConfigError` with one line."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"invalid config {source}: not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"invalid config {source}: expected a mapping with the keys background and "
            f"providers, got a YAML {type(data).__name__}"
        )
    try:
        return FileConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_error(error, source)) from None


def load_file_config(path: Path | None) -> FileConfig:
    """Reads ``path``; without one, ``./orchestrator.yaml`` if it exists, else defaults."""
    if path is None:
        if not DEFAULT_CONFIG_FILE.is_file():
            return FileConfig()
        path = DEFAULT_CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot read config file {path}: {error.strerror or error}; expected a readable "
            "YAML file (see README 'The orchestrator daemon')"
        ) from None
    return parse_config(text, str(path))


@dataclass(frozen=True)
class EnterpriseConfig:
    """Everything the daemon needs to know, file and environment merged (seed names)."""

    file: FileConfig = field(default_factory=FileConfig)
    settings_poll_interval: float | None = None
    settings_poll_only: bool | None = None

    @property
    def providers(self) -> dict[str, ProviderSection]:
        """The external providers (the local one is always there and needs no entry)."""
        return self.file.providers

    @property
    def job_polling_enabled(self) -> bool:
        """Explicit ``enabled``, else on when some provider has no webhook URL."""
        explicit = self.file.background.job_status_polling.enabled
        if explicit is not None:
            return explicit
        return any(p.webhook_url is None for p in self.providers.values())

    @property
    def job_polling_interval(self) -> float:
        """``ORCHESTRATOR_JOB_POLL_INTERVAL``, else the file, else 30 s."""
        if self.settings_poll_interval is not None:
            return self.settings_poll_interval
        return self.file.background.job_status_polling.interval_seconds

    @property
    def queue_processing_enabled(self) -> bool:
        """Dispatch of claimable jobs to external providers."""
        return self.file.background.queue_processing.enabled

    @property
    def queue_processing_interval(self) -> float:
        """Seconds between queue passes when no NOTIFY wakes it (5 s by default)."""
        return self.file.background.queue_processing.interval_seconds

    @property
    def dispatch_batch(self) -> int:
        """Jobs claimed per claim call while dispatching."""
        return self.file.background.queue_processing.dispatch_batch

    @property
    def poll_only(self) -> bool:
        """``ORCHESTRATOR_POLL_ONLY``, else the file; False by default."""
        if self.settings_poll_only is not None:
            return self.settings_poll_only
        return bool(self.file.background.queue_processing.poll_only)

    @property
    def approval_expiration_enabled(self) -> bool:
        """Expiry of overdue approval requests."""
        return self.file.background.approval_expiration.enabled

    @property
    def approval_expiration_interval(self) -> float:
        """Seconds between expiry passes (5 minutes by default)."""
        return self.file.background.approval_expiration.interval_seconds

    @property
    def worker_reaping_enabled(self) -> bool:
        """Recovery of the jobs of dead workers."""
        return self.file.background.worker_reaping.enabled

    @property
    def worker_reaping_interval(self) -> float:
        """Seconds between reaping passes."""
        return self.file.background.worker_reaping.interval_seconds

    @property
    def worker_stale_after(self) -> int:
        """A worker silent for this many seconds is dead."""
        return self.file.background.worker_reaping.stale_after_seconds

    @property
    def log_maintenance_enabled(self) -> bool | None:
        """True/False when the file says; None = only where pg_cron does not do it."""
        return self.file.background.log_maintenance.enabled

    @property
    def log_maintenance_interval(self) -> float:
        """Seconds between log maintenance passes (hourly by default)."""
        return self.file.background.log_maintenance.interval_seconds

    @property
    def periodic_jobs(self) -> PeriodicSection:
        """The cron ticks' duty (every 5 s by default)."""
        return self.file.background.periodic_jobs

    @property
    def job_retention(self) -> RetentionSection:
        """The job history's retention duty (hourly by default)."""
        return self.file.background.job_retention


def load_enterprise_config(
    path: Path | str | None = None, settings: Settings | None = None
) -> EnterpriseConfig:
    """Reads the file (``path``, else ``ORCHESTRATOR_CONFIG``, else ./orchestrator.yaml)
    and merges the environment's overrides."""
    settings = settings or get_settings()
    chosen = Path(path) if path is not None else settings.daemon_config_file
    return EnterpriseConfig(
        load_file_config(chosen), settings.job_poll_interval, settings.poll_only
    )


_current: EnterpriseConfig | None = None


def set_enterprise_config(config: EnterpriseConfig | None) -> None:
    """Makes ``config`` the process's config (``orchestrator run --config`` does)."""
    global _current
    _current = config


def get_enterprise_config() -> EnterpriseConfig:
    """The process's config (the seed's accessor), loaded on first use."""
    global _current
    if _current is None:
        _current = load_enterprise_config()
    return _current
