"""``orchestrator run``: the orchestrator daemon (continuous, or one cycle with ``--once``).

Same database resolution as every command (``DATABASE_URL``, else the embedded server,
which is migrated on start; a configured database must be migrated with ``orchestrator
migrate``). Logs go to stdout (``ORCHESTRATOR_LOG_*``) and, with
``ENABLE_DB_LOGGING=true``, to ``system_logs`` with each record's cycle number.
SIGTERM, SIGINT or SIGHUP: the cycle in progress finishes, the leases are released, the logs
are flushed, exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from orchestrator.cli.schema import prepared_database
from orchestrator.config import Settings, get_settings
from orchestrator.daemon.config import (
    EnterpriseConfig,
    load_enterprise_config,
    set_enterprise_config,
)
from orchestrator.daemon.tasks import BackgroundTaskManager
from orchestrator.logs.format import init_from_env

logger = logging.getLogger("orchestrator.daemon")
# SIGHUP too: a daemon started from a terminal that is closed stops as on SIGTERM
# (and stops the embedded server with it) instead of dying on the spot.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def register(commands: Any) -> None:
    """Adds the ``run`` subcommand."""
    parser = commands.add_parser(
        "run",
        help="run the orchestrator daemon (queue dispatch, job polling, approvals, reaping)",
        description="Runs the daemon's duties in numbered cycles until SIGTERM/SIGINT: "
        "queue processing (every 5 s and on NOTIFY), job status polling of external "
        "providers, approval expiration, dead-worker reaping and log maintenance.",
    )
    parser.add_argument(
        "--once", action="store_true", help="run one cycle of every duty, then exit"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML config file (default: $ORCHESTRATOR_CONFIG, else ./orchestrator.yaml)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Runs the subcommand."""
    settings = get_settings()
    config = load_enterprise_config(args.config, settings)
    set_enterprise_config(config)
    init_from_env(settings)
    # The embedded server's package narrates every start and stop at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with prepared_database(settings, logger) as target:
        return asyncio.run(serve(target.url, config, settings, once=args.once))


async def serve(dsn: str, config: EnterpriseConfig, settings: Settings, *, once: bool) -> int:
    """The daemon on ``dsn``: one cycle, or cycles until SIGTERM/SIGINT."""
    manager = BackgroundTaskManager(config, settings, dsn=dsn)
    if once:
        try:
            outcomes = await manager.run_once()
        finally:
            await manager.stop()
        failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
        summary = ", ".join(f"{name}: {outcome}" for name, outcome in sorted(outcomes.items()))
        logger.info("One cycle done (%s)", summary or "no duty enabled")
        return 1 if failed else 0

    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: int) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await manager.start()
        logger.info("Orchestrator daemon running as %s", manager.holder)
        await stop.wait()
        logger.info("Received %s; stopping", received[0] if received else "stop")
    finally:
        await manager.stop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    logger.info("Orchestrator daemon stopped")
    return 0
