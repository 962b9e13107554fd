"""``orchestrator worker``: run local-provider jobs from the hub's queue until stopped.

Its log records (its own and every line its jobs print) go to ``system_logs`` on its
heartbeat, tagged with ``worker_id`` and, while a job runs, ``task_id`` = the job id;
they are also printed on stdout (``ORCHESTRATOR_LOG_FORMAT``, ``ORCHESTRATOR_LOG_LEVEL``).
SIGTERM, SIGHUP or Ctrl-C: stop claiming, let running jobs finish within ``--grace`` seconds,
release the rest, flush the logs, exit 0. A GPU box that has only the Supabase project
URL and key runs it over Supabase REST (polling: REST has no ``LISTEN``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from orchestrator.cli.schema import prepare_schema
from orchestrator.config import Settings, get_settings
from orchestrator.db.target import SqlTarget, resolve_database
from orchestrator.errors import CallRefused, InputRefused, MigrationError
from orchestrator.jobs.calls import extend_job_leases
from orchestrator.logs.format import init_from_env
from orchestrator.logs.worker import LogBuffer, WorkerDatabaseLogHandler
from orchestrator.storage.jobenv import storage_endpoint
from orchestrator.worker.runtime import Worker, WorkerOptions
from orchestrator.worker.store import JobStore, WorkerDatabase


def _number(kind: Callable[[str], float], low: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _worker_id(text: str) -> str:
    if not text.strip() or len(text) > 255:
        raise argparse.ArgumentTypeError("expected a non-blank name of at most 255 characters")
    return text


def register(commands: Any) -> None:
    """Adds the ``worker`` subcommand."""
    p = commands.add_parser(
        "worker",
        help="run local jobs from the queue (shell commands, Python callables)",
        description="Claims jobs of the local provider, runs them, heartbeats with its logs, "
        "renews its leases, and reports each result with its lease token.",
    )
    positive_int = _number(int, 1, "a whole number of at least 1")
    seconds = _number(float, 0.05, "a number of seconds of at least 0.05")
    p.add_argument(
        "--worker-id", type=_worker_id, help="stable name of this worker (default: host-pid)"
    )
    p.add_argument(
        "--max-jobs",
        type=positive_int,
        help="jobs claimed per claim call, the batch size (default: the free slots)",
    )
    p.add_argument("--concurrency", type=positive_int, default=1, help="jobs run at once")
    p.add_argument(
        "--poll-only",
        action="store_true",
        help="never LISTEN (PgBouncer/Supavisor in transaction mode): poll instead; "
        "always so over Supabase REST",
    )
    p.add_argument(
        "--poll-interval", type=seconds, default=5.0, help="seconds between polls (default 5)"
    )
    p.add_argument(
        "--grace",
        type=_number(float, 0, "a number of seconds, 0 or more"),
        default=30.0,
        help="seconds a running job may finish after SIGTERM before it is released (30)",
    )
    p.add_argument(
        "--once", action="store_true", help="exit when no job is claimable and none is running"
    )
    p.add_argument(
        "--lease", type=positive_int, default=30, help="lease of a claimed job in seconds (30)"
    )
    p.add_argument(
        "--heartbeat",
        type=seconds,
        help="seconds between heartbeats and lease renewals (default: lease / 3, at most 5)",
    )
    p.add_argument("--provider", default="local", help="provider whose jobs to claim (local)")
    p.add_argument(
        "--job-type",
        action="append",
        dest="job_types",
        help="claim only this job type (repeatable; default: any)",
    )
    p.set_defaults(run=run)


@contextlib.contextmanager
def worker_database(settings: Settings, worker_id: str) -> Iterator[WorkerDatabase]:
    """The database the settings name, checked before the first claim.

    ``DATABASE_URL`` or the embedded server: psycopg, schema checked (the embedded one
    migrated). Else ``SUPABASE_URL`` + ``SUPABASE_SERVICE_ROLE_KEY``: Supabase REST,
    polling, checked by one harmless call (renewing no leases) so a gateway that is
    down or lacks the hub's functions is one line now, not a warning every poll.
    """
    with resolve_database(settings) as target:
        database = WorkerDatabase.of(target)
        if isinstance(target, SqlTarget):
            prepare_schema(target)
            yield database
            return
        store = JobStore(database, worker_id)
        try:
            store.run(extend_job_leases(worker_id, 1, []))
        except (CallRefused, InputRefused) as error:
            raise MigrationError(
                f"{database.label} cannot run the worker's functions ({error}); apply the "
                "hub's migrations there (`orchestrator migrate` with DATABASE_URL)"
            ) from None
        finally:
            store.close()
        yield database


def run(args: argparse.Namespace) -> int:
    """Runs the worker until SIGTERM/Ctrl-C (or, with --once, until the queue is empty)."""
    settings = get_settings()
    worker_id = args.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    init_from_env(settings)
    buffer = LogBuffer(settings.db_log_buffer_size, settings.db_log_buffer_bytes)
    handler = WorkerDatabaseLogHandler(worker_id, buffer, settings.db_log_level)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, handler.level))
    heartbeat = args.heartbeat or min(5.0, args.lease / 3)
    options = WorkerOptions(
        worker_id=worker_id,
        concurrency=args.concurrency,
        batch_size=args.max_jobs,
        lease_seconds=args.lease,
        heartbeat_seconds=heartbeat,
        poll_interval=args.poll_interval,
        poll_only=args.poll_only,
        grace_seconds=args.grace,
        once=args.once,
        provider=args.provider,
        job_types=args.job_types,
        upload_endpoint=storage_endpoint(settings),
        upload_bucket=settings.storage_bucket,
        upload_ttl_seconds=settings.storage_credential_ttl,
    )
    with worker_database(settings, worker_id) as database:
        worker = Worker(database, options, buffer)

        def stop(signum: int, frame: FrameType | None) -> None:
            worker.request_stop()

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: terminal closed
            signal.signal(signum, stop)
        try:
            worker.run()
        finally:
            root.removeHandler(handler)
    return 0
