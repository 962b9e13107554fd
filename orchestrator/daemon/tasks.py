"""``BackgroundTaskManager``: the daemon's duties, started and stopped as one (seed API).

```python
await start_background_tasks()   # e.g. in an application's lifespan
...
await stop_background_tasks()
```

The duties, each under its own lease and isolated from the others (see
:mod:`~orchestrator.daemon.loop`):

========================  ===========================  ==============================
duty                      when                         what
========================  ===========================  ==============================
``queue_processing``      every 5 s and on NOTIFY      submit claimable jobs of
                                                       external providers
``remote_cancellation``   every 5 s, with external     cancel at the provider what
                          providers                    was cancelled in the hub
``job_status_polling``    every 30 s (auto: when a     sync every active job with its
                          provider has no webhook)     provider, record changes
``approval_expiration``   every 5 min                  ``func_expire_approvals``
``worker_reaping``        every 10 s                   ``func_reap_dead_workers``
``log_maintenance``       hourly, unless pg_cron       partitions and retention
``audit_retention``       hourly                       ``func_audit_prune``
``webhook_retention``     hourly, with external        ``func_prune_webhook_deliveries``
                          providers
``job_counters``          every minute                 ``func_fold_job_counters``
``rate_limit_prune``      every 5 min                  ``func_rate_limit_prune``
``periodic_jobs``         every 5 s                    submit due cron ticks, once
``job_retention``         hourly                       ``func_prune_jobs``
``multipart_expiry``      hourly                       ``func_expire_multipart_uploads``
                                                       and their part files
========================  ===========================  ==============================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator.config import Settings, get_settings
from orchestrator.daemon.config import EnterpriseConfig, get_enterprise_config
from orchestrator.daemon.duty_set import POLLING, QUEUE, REMOTE_CANCELS, build_duties
from orchestrator.daemon.duty_status import DutyStatusRecorder
from orchestrator.daemon.leader import DutyLeases, make_holder_id
from orchestrator.daemon.loop import ControlLoop, Duty, DutyOutcome
from orchestrator.daemon.wakeup import NotifyListener
from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.db.target import SqlTarget, resolve_database
from orchestrator.jobs.wakeup import CANCEL_PREFIX, polling_reason
from orchestrator.providers.base import Provider
from orchestrator.providers.circuit import CircuitBreaker
from orchestrator.providers.registry import build_providers
from orchestrator.providers.runtime import RuntimeProviderSettings

logger = logging.getLogger("orchestrator.daemon.tasks")

__all__ = ["POLLING", "QUEUE", "REMOTE_CANCELS", "BackgroundTaskManager", "get_task_manager"]


class BackgroundTaskManager:
    """Owns the database connections, providers, leases and the control loop."""

    def __init__(
        self,
        config: EnterpriseConfig | None = None,
        settings: Settings | None = None,
        *,
        dsn: str | None = None,
        providers: dict[str, Provider] | None = None,
        holder: str | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.config = config or get_enterprise_config()
        self.dsn = dsn
        self.holder = holder or make_holder_id(self.settings.orchestrator_instance_id)
        self.providers: dict[str, Provider] = dict(providers or {})
        self.executor: AsyncpgExecutor | None = None
        self.loop: ControlLoop | None = None
        self.runtime = RuntimeProviderSettings(self.config.providers, self.settings)
        self.breaker: CircuitBreaker | None = None
        self.listener: NotifyListener | None = None
        self._target: contextlib.ExitStack | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- set-up ---------------------------------------------------------------------------

    async def _open(self) -> None:
        if self.executor is not None:
            return
        if self.dsn is None:  # the same resolution as every command: URL, else embedded
            stack = contextlib.ExitStack()
            target: SqlTarget = await asyncio.to_thread(
                lambda: stack.enter_context(resolve_database(self.settings, sql=True))
            )
            self._target, self.dsn = stack, target.url
        self.executor = await AsyncpgExecutor.connect(self.dsn, max_size=4)
        if not self.providers:
            self.providers = build_providers(self.executor, self.config.providers, self.settings)
        self.breaker = CircuitBreaker(self.executor, lambda: self.runtime.sections)
        self.loop = ControlLoop(
            self.build_duties(),
            DutyLeases(self.executor, self.holder),
            on_run=DutyStatusRecorder(self.executor, self.holder),
        )

    def build_duties(self) -> list[Duty]:
        """The enabled duties, from the config (:mod:`orchestrator.daemon.duty_set`)."""
        assert self.executor is not None
        return build_duties(
            self.executor,
            self.config,
            self.settings,
            self.providers,
            self.breaker,
            self._with_settings,
        )

    def _with_settings(self, action: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """``action`` run after the providers' runtime settings are synced (at most one
        read per 2 s), so an override made on any instance applies within seconds."""

        async def run() -> Any:
            assert self.executor is not None
            await self.runtime.sync(self.executor, self.providers)
            return await action()

        return run

    def _on_notify(self, payload: str) -> None:
        """A job became claimable; wake queue processing if the daemon dispatches it
        (a worker's cancel notice is none of the daemon's business)."""
        if payload.startswith(CANCEL_PREFIX):
            return
        provider = self.providers.get(payload)
        if self.loop is not None and (provider is None or provider.dispatched_by_daemon):
            self.loop.request(QUEUE)

    async def _start_listener(self) -> None:
        assert self.dsn is not None
        reason = polling_reason(SqlTarget.of_url(self.dsn), poll_only=self.config.poll_only)
        if reason is not None:
            logger.info("Polling: %s; the queue is checked every %gs", reason, self._queue_interval)
            return
        listener = NotifyListener(self.dsn, self._on_notify)
        if await listener.start():
            self.listener = listener

    @property
    def _queue_interval(self) -> float:
        return self.config.queue_processing_interval

    # -- the seed's API -----------------------------------------------------------------

    async def start(self) -> None:
        """Connects and starts every enabled duty in the background."""
        if self._task is not None:
            return
        await self._open()
        assert self.loop is not None
        names = {d.name for d in self.loop.duties}
        if QUEUE in names:
            dispatched = any(p.dispatched_by_daemon for p in self.providers.values())
            try:
                if dispatched:  # nothing to wake for when workers claim every job
                    await self._start_listener()
            except Exception:
                logger.exception("Failed to start queue processing")
            logger.info("Queue scheduler started")
        if POLLING in names:
            logger.info("Starting job status polling")
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="orchestrator-daemon-loop")

    async def _run(self) -> None:
        assert self.loop is not None
        wake_listener = asyncio.create_task(self._keep_listening())
        try:
            await self.loop.run_until(self._stop)
        finally:
            wake_listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wake_listener

    async def _keep_listening(self) -> None:
        """Reconnects a lost LISTEN connection every queue interval."""
        while self.listener is not None:
            await asyncio.sleep(self._queue_interval)
            await self.listener.ensure()

    async def run_once(self) -> dict[str, DutyOutcome]:
        """One cycle of every enabled duty (``orchestrator run --once``)."""
        await self._open()
        assert self.loop is not None
        return await self.loop.run_once()

    async def stop(self, timeout: float = 10) -> None:
        """Finishes the cycle in progress (at most ``timeout`` s), releases the leases
        and closes connections and providers."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self.listener is not None:
            listener, self.listener = self.listener, None
            await listener.close()
        if self.loop is not None and self.loop.leases is not None:
            await self.loop.leases.release_all()
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.close()
        if self.executor is not None:
            await self.executor.close()
            self.executor = None
        if self._target is not None:
            await asyncio.to_thread(self._target.close)
            self._target = None

    @property
    def running(self) -> bool:
        """True while the control loop runs."""
        return self._task is not None and not self._task.done()

    def status(self) -> dict[str, Any]:
        """What the loop did last: cycle number and each duty's last outcome."""
        if self.loop is None:
            return {"running": False, "cycle": 0, "duties": {}}
        return {
            "running": self.running,
            "cycle": self.loop.cycle,
            "duties": dict(self.loop.outcomes),
        }


_manager: BackgroundTaskManager | None = None


def get_task_manager() -> BackgroundTaskManager:
    """The process's manager (created on first use from the settings and config)."""
    global _manager
    if _manager is None:
        _manager = BackgroundTaskManager()
    return _manager


async def start_background_tasks() -> BackgroundTaskManager:
    """Starts the process's manager (seed API); returns it."""
    manager = get_task_manager()
    await manager.start()
    return manager


async def stop_background_tasks() -> None:
    """Stops the process's manager, if started (seed API)."""
    global _manager
    if _manager is not None:
        manager, _manager = _manager, None
        await manager.stop()
