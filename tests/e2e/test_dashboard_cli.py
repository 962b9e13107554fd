"""``orchestrator dashboard`` as a user runs it: in a real terminal (a pty), quitting with
q or Ctrl-C; and bad flags refused with one line."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.config import ACCEPTED
from tests.e2e.test_cli import orchestrator

LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"


def read_until(fd: int, wanted: bytes, timeout: float) -> bytes:
    """Reads the terminal until ``wanted`` shows up (or the time is over)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("key", [b"q", b"\x03"], ids=["q", "ctrl-c"])
def test_dashboard_in_a_terminal_quits_cleanly(db_url, tmp_path: Path, key: bytes):
    """It draws its status line, then the key ends it with status 0 and the terminal
    is handed back (alternate screen left)."""
    main_fd, child_fd = pty.openpty()
    clean = {k: v for k, v in os.environ.items() if k not in ACCEPTED}
    env = {
        **clean,
        "DATABASE_URL": db_url,
        "TERM": "xterm-256color",
        "COLUMNS": "80",
        "LINES": "24",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "dashboard", "--refresh", "0.2"],
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    os.close(child_fd)
    try:
        assert b"LIVE" in read_until(main_fd, b"LIVE", 30)
        os.write(main_fd, key)
        assert process.wait(timeout=20) == 0
        rest = read_until(main_fd, LEAVE_ALTERNATE_SCREEN, 5)
        assert LEAVE_ALTERNATE_SCREEN in rest
        assert b"Traceback" not in rest
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(main_fd)


def test_bad_flags_get_one_line_and_a_non_zero_status(tmp_path: Path):
    """An unknown level or a refresh of zero: what is wrong and what is accepted."""
    level = orchestrator("dashboard", "--level", "loud", cwd=tmp_path)
    assert level.returncode == 2
    assert "argument --level: unknown level 'loud'; accepted: DEBUG, INFO" in level.stderr
    refresh = orchestrator("dashboard", "--refresh", "0", cwd=tmp_path)
    assert refresh.returncode == 2
    assert "expected a number of seconds from 0.1 to 3600, got '0'" in refresh.stderr
    assert "Traceback" not in level.stderr + refresh.stderr
