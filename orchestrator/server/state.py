"""``HubState``: what one running hub app holds (database pool, daemon, secrets, metrics).

One object per app (``app.state.hub``), created by :func:`~orchestrator.server.app.create_app`
or, when the hub's router is mounted in a team's own FastAPI app, by the lifespan from
the settings. Everything shared between instances lives in PostgreSQL; this holds only
per-process things: the pool, this process's daemon, caches and HTTP counters.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from orchestrator import __version__
from orchestrator.config import Settings
from orchestrator.daemon.config import EnterpriseConfig
from orchestrator.daemon.tasks import BackgroundTaskManager
from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.db.schema_files import SchemaFiles, discover
from orchestrator.secrets import SecretsManager, build_secrets_manager
from orchestrator.server.http_metrics import HttpMetrics


@dataclass(eq=False)
class HubState:
    """The per-process state of one hub app; :meth:`start` and :meth:`stop` are the
    lifespan's two halves."""

    settings: Settings
    dsn: str
    label: str
    config: EnterpriseConfig
    run_daemon: bool = True
    secrets: SecretsManager | None = None
    instance: str = ""  # default: ORCHESTRATOR_INSTANCE_ID:pid
    files: SchemaFiles = field(default_factory=discover)
    http_metrics: HttpMetrics = field(default_factory=HttpMetrics)
    executor: AsyncpgExecutor | None = None
    manager: BackgroundTaskManager | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    shutting_down: bool = False
    # Set when the server was told to stop, before it waits for open requests: endless
    # responses (the event stream) end at once and their clients resume elsewhere.
    draining: bool = False
    daemon_error: str | None = None
    version: str = __version__
    # Per-app services of each area (health, metrics, later rate limits), made on first use.
    services: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.secrets is None:
            self.secrets = build_secrets_manager(self.settings)
        self.instance = self.instance or f"{self.settings.orchestrator_instance_id}:{os.getpid()}"

    @property
    def secret_store(self) -> SecretsManager:
        """The secrets manager (always set after construction)."""
        assert self.secrets is not None
        return self.secrets

    @property
    def db(self) -> AsyncpgExecutor:
        """The app's asyncpg executor (open between start and stop)."""
        if self.executor is None:
            from orchestrator.errors import DatabaseUnavailable

            raise DatabaseUnavailable("the hub is not started (or is stopping)")
        return self.executor

    async def start(self) -> None:
        """Opens the pool and, unless API-only, starts the daemon's duties in this loop."""
        self.executor = await AsyncpgExecutor.connect(
            self.dsn, max_size=4, min_size=0, label=self.label
        )
        from orchestrator.server.ratelimit.limiter import bind_database

        bind_database(self.executor)  # get_rate_limiter() limiters use this pool
        if self.run_daemon:
            self.manager = BackgroundTaskManager(self.config, self.settings, dsn=self.dsn)
            try:
                await self.manager.start()
            except BaseException:
                await self.stop()
                raise

    async def stop(self) -> None:
        """Stops the duties (their leases released) and closes the pool."""
        self.shutting_down = True
        if self.manager is not None:
            manager, self.manager = self.manager, None
            await manager.stop()
        if self.executor is not None:
            executor, self.executor = self.executor, None
            from orchestrator.server.ratelimit.limiter import bind_database

            bind_database(None)
            with contextlib.suppress(Exception):
                await executor.close()

    def daemon_problem(self) -> str | None:
        """Why this instance's embedded daemon is not running, or None (API-only: None)."""
        if not self.run_daemon or self.shutting_down:
            return None
        manager = self.manager
        if manager is None or not manager.running:
            return self.daemon_error or "the daemon task of this instance is not running"
        return None

    @property
    def uptime(self) -> float:
        """Seconds since this app was created (process start for `orchestrator serve`)."""
        return time.monotonic() - self.started_monotonic
