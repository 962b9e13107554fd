"""How every ``orchestrator`` command starts and ends as a Unix process.

* **Usage errors** are one line and exit status 2, as argparse's own are: the
  :class:`CommandParser` prints ``orchestrator logs: error: argument --cycle: ...``
  without the multi-line usage block, and :class:`~orchestrator.errors.UsageError`
  (a flag value checked after parsing) gets the same status.
* **A closed pipe** (``orchestrator logs | head``) ends the command quietly: stdout is
  pointed at ``/dev/null`` so the interpreter's last flush cannot fail again, and the
  exit status is 141, the status of a tool killed by SIGPIPE, as ``pipefail`` expects.
* **SIGTERM and SIGHUP** (closing the terminal) end a command as Ctrl-C does, by an
  exception that unwinds its ``with`` blocks, so the embedded PostgreSQL it started is
  stopped; by default they would kill the process on the spot and leave the server
  running. Commands with a graceful stop of their own (worker, daemon, dashboard)
  install their own handlers for both signals instead.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from types import FrameType
from typing import NoReturn

from orchestrator.devnull import point_at_devnull

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the flag, what is wrong, what is
    accepted) and exit status 2; ``--help`` shows the usage as before."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived; the command unwinds and exits ``128 + signal``.

    A BaseException, like KeyboardInterrupt, so no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def exit_on_stop_signals() -> None:
    """SIGTERM and SIGHUP raise :class:`Stopped` in the main thread (see module doc)."""
    for signum in STOP_SIGNALS:
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            signal.signal(signum, _raise_stopped)


def silence_stdout() -> None:
    """Points stdout at /dev/null after a closed pipe (see :mod:`orchestrator.devnull`)."""
    point_at_devnull(sys.stdout)
