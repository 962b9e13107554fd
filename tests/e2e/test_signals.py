"""The embedded PostgreSQL stops with the command that started it, whatever ends it:
SIGTERM (a supervisor, `kill`) or SIGHUP (its terminal closed), for every command that
runs until stopped: `logs -f`, `dashboard`, `worker`, `run` and the `demo`.

One embedded data directory serves the module (initdb once); each test starts the
command on it, waits until the command says it is running, signals it, and checks that
the command ended and the server with it. The module's fixture makes that directory: a
fresh start (`orchestrator logs` migrates a brand-new embedded database, as `jobs` and
`worker` do), then the demo fills it, so `logs -f` has rows to print. Every test asks
for the fixture rather than relying on an earlier test: under pytest-xdist any of them
may be the first, or the only one, its worker runs from this module.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from orchestrator.config import ACCEPTED
from tests.conftest import private_pgdata
from tests.e2e.test_cli import _postmaster_running, orchestrator

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class FreshStart:
    """What the first commands on a brand-new embedded data directory did."""

    data_dir: Path
    first: subprocess.CompletedProcess[str]  # `logs --stats`, the directory's first user
    first_left_it_running: bool
    filled: subprocess.CompletedProcess[str]  # `demo --no-jobs` after it


@pytest.fixture(scope="module")
def fresh_start(tmp_path_factory) -> Iterator[FreshStart]:
    """A fresh embedded data directory, read first by `logs --stats`, then filled by the
    demo (its rows are what `logs -f` prints in the tests below). It is not under
    pytest's temporary root: see tests/conftest.py, ``private_pgdata``."""
    cwd = tmp_path_factory.mktemp("signals")
    with private_pgdata() as data_dir:
        first = orchestrator("logs", "--stats", cwd=cwd, EMBEDDED_PG_DATA_DIR=str(data_dir))
        running = _postmaster_running(data_dir)
        filled = orchestrator("demo", "--no-jobs", cwd=cwd, EMBEDDED_PG_DATA_DIR=str(data_dir))
        yield FreshStart(data_dir, first, running, filled)


@pytest.fixture(scope="module")
def data_dir(fresh_start: FreshStart) -> Path:
    """The embedded data directory the demo filled, its server stopped."""
    assert fresh_start.filled.returncode == 0, fresh_start.filled.stderr
    assert not _postmaster_running(fresh_start.data_dir)
    return fresh_start.data_dir


def _env(data_dir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ACCEPTED and k != "TEST_DATABASE_URL"}
    return {**clean, "EMBEDDED_PG_DATA_DIR": str(data_dir), "TERM": "xterm-256color",
            "COLUMNS": "100", "LINES": "30", "ORCHESTRATOR_LOG_FORMAT": "text"}  # fmt: skip


def _wait_stopped(data_dir: Path, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while _postmaster_running(data_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_logs_migrates_a_fresh_embedded_database(fresh_start):
    """The first command on a new embedded server is a reader: it migrates, reads (no
    rows yet), and stops the server. Then the demo fills it for the tests below."""
    first, filled = fresh_start.first, fresh_start.filled
    assert first.returncode == 0, first.stderr
    assert "Logs from" in first.stdout and ": 0 (0 ERROR or CRITICAL)" in first.stdout
    assert not fresh_start.first_left_it_running
    assert filled.returncode == 0, filled.stderr
    assert "Schema: 0 file(s) of sql/ applied now" in filled.stdout  # logs did it


def _read_until(fd: int, wanted: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


COMMANDS = {
    "logs -f": (["logs", "-f", "--format", "jsonl", "--interval", "0.2"], b'"message"', None),
    "worker": (["worker", "--poll-interval", "0.2", "--grace", "1"], b"started on", 0),
    "run": (["run"], b"Orchestrator daemon running", 0),
    "demo": (["demo"], b"Jobs: started", None),
    "dashboard": (["dashboard", "--refresh", "0.2"], b"LIVE", None),
}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_embedded_server_stops_with_its_command(data_dir, tmp_path, name, signum):
    """Started, running (it said so), signalled: the command ends (a graceful 0 for the
    worker and the daemon, 128 + signal otherwise), its child processes too, and the
    embedded server is not left running. The dashboard runs in a terminal (a pty),
    which for SIGHUP is closed first, as when its window is."""
    args, ready, status = COMMANDS[name]
    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        stdin=child_fd, stdout=child_fd, stderr=child_fd,
        cwd=tmp_path, env=_env(data_dir), start_new_session=True,
    )  # fmt: skip
    os.close(child_fd)
    closed = False
    try:
        seen = _read_until(main_fd, ready, 60)
        assert ready in seen, seen[-2000:]
        assert _postmaster_running(data_dir)
        children = psutil.Process(process.pid).children(recursive=True)
        if signum == signal.SIGHUP and name == "dashboard":
            os.close(main_fd)  # the terminal goes away before the hang-up arrives
            closed = True
        process.send_signal(signum)
        code = process.wait(timeout=60)
        rest = b"" if closed else _read_until(main_fd, b"\0", 1)
        output = b"\n" + seen + rest  # (the demo's rows carry tracebacks inside JSON strings)
        assert b"\nTraceback (most recent call last)" not in output, output[-3000:]
        assert code == (128 + signum if status is None else status), (seen + rest)[-2000:]
        assert _wait_stopped(data_dir), "the embedded PostgreSQL is still running"
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if not closed:
            os.close(main_fd)
