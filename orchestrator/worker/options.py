"""What a worker is told (the ``orchestrator worker`` flags, checked) and what it counts.

Kept apart from the runtime (runtime.py) so the CLI and tests can build and read them
without the claim loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from orchestrator.errors import ConfigError


@dataclass
class WorkerOptions:
    """How a worker claims, runs and stops (the ``orchestrator worker`` flags)."""

    worker_id: str
    concurrency: int = 1
    batch_size: int | None = None  # jobs per claim; None = the free slots
    lease_seconds: int = 30
    heartbeat_seconds: float = 5.0
    poll_interval: float = 5.0
    poll_only: bool = False
    grace_seconds: float = 30.0
    once: bool = False
    provider: str = "local"
    job_types: list[str] | None = None
    kill_grace: float = 5.0
    # {ORCHESTRATOR_PUBLIC_URL}/api/cloud/storage: each command job then gets its own
    # upload credentials as AWS_* variables (OPS §15.1); None: no credentials.
    upload_endpoint: str | None = None
    upload_bucket: str = "outputs"
    upload_ttl_seconds: int = 7 * 86_400

    def __post_init__(self) -> None:
        check_timing(self.lease_seconds, self.heartbeat_seconds)

    @property
    def stop_grace(self) -> float:
        """SIGTERM-to-SIGKILL time of a stopped command: at most a quarter of the lease,
        so a dead worker's command is gone before its job can be claimed again."""
        return min(self.kill_grace, self.lease_seconds / 4)


def check_timing(lease_seconds: float, heartbeat_seconds: float) -> None:
    """Refuses a heartbeat that cannot keep the lease: each beat renews it, so a beat
    slower than half the lease lets it expire between two renewals, and another worker
    would run the job at the same time."""
    if heartbeat_seconds > lease_seconds / 2:
        raise ConfigError(
            f"--heartbeat {heartbeat_seconds:g} is too slow for --lease {lease_seconds:g}: "
            f"leases are renewed every heartbeat, so it must be at most half the lease "
            f"({lease_seconds / 2:g} s); raise --lease or lower --heartbeat"
        )


@dataclass
class WorkerCounts:
    """What this worker did, for its exit line and tests."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    refused: int = 0
    released: int = 0
    lost: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, count: int | bool = 1) -> None:
        """Adds to a counter; job threads report concurrently."""
        with self._lock:
            setattr(self, name, getattr(self, name) + int(count))
