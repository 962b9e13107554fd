"""Running one job: a command line as a child process, or a Python callable in-thread.

Every line a command prints becomes a log record of the calling thread's context, so
with the task context set (``set_task_context(job_id, worker_id)``) each row carries the
job's ``task_id`` and the worker's ``worker_id``: stdout at INFO, stderr at WARNING.
The two pipes are read by two threads started *in a copy of the caller's context*
(threads otherwise start with empty context variables and the rows would lose the task).

A run can be stopped from another thread (lease lost, cancelled, timed out, shutdown
grace over): a command's whole process group gets SIGTERM, then SIGKILL after
``kill_grace`` seconds. A command runs under a small supervisor process
(:mod:`orchestrator.worker.supervisor`) that does the same when the worker dies,
however it dies, and stops whatever the command left running in its group when it exits. A Python
callable cannot be interrupted safely; :meth:`CallableRun.stop` only marks it, and the
runtime simply never reports its result (see ``orchestrator.worker.runtime``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from orchestrator.db.jsonsafe import json_safe
from orchestrator.worker.payload import InvalidPayload, PythonCallable, ShellCommand, parse_payload

STDOUT_LOGGER = "orchestrator.job.stdout"
STDERR_LOGGER = "orchestrator.job.stderr"
STDERR_TAIL_LINES = 20
SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
ERROR_MAX_CHARS = 2000


class Run(Protocol):
    """A job being run: ``run`` blocks until it ends; ``stop`` may come from another thread."""

    def run(self) -> RunOutcome: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended: ``ok`` (complete with ``result``) or not (fail with ``error``).

    ``stopped`` is set when the run was stopped from outside; the runtime then neither
    completes nor fails the job (it releases it, or its lease is gone anyway).
    """

    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    retryable: bool = True
    stopped: bool = False


class ShellRun:
    """One command line, run under :mod:`~orchestrator.worker.supervisor` so that it and
    everything it starts in its process group die with the worker (or at its end)."""

    def __init__(
        self, spec: ShellCommand, *, kill_grace: float = 5.0, env: Mapping[str, str] | None = None
    ) -> None:
        self.spec, self.kill_grace = spec, kill_grace
        # Added to the worker's environment (the job's upload credentials, OPS §15.1).
        self.env = dict(env) if env else None
        self._process: subprocess.Popen[str] | None = None
        self._control: socket.socket | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> RunOutcome:
        """Runs the command to its end (or until stopped), logging each output line."""
        with self._lock:
            if self._stopped.is_set():
                return RunOutcome(False, error="stopped before it started", stopped=True)
            ours, theirs = socket.socketpair()
            try:
                self._process = subprocess.Popen(
                    [
                        sys.executable,
                        "-I",
                        "-S",
                        SUPERVISOR,
                        str(theirs.fileno()),
                        str(self.kill_grace),
                        "--",
                        *self.spec.argv,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                    bufsize=1,
                    pass_fds=(theirs.fileno(),),
                    env={**os.environ, **self.env} if self.env else None,
                    start_new_session=True,  # a terminal's Ctrl-C reaches the worker only
                )
            except OSError as error:  # the interpreter itself could not start
                ours.close()
                return RunOutcome(False, error=f"cannot start the supervisor: {error}")
            finally:
                theirs.close()
            self._control = ours
        process = self._process
        assert process.stdout is not None and process.stderr is not None
        tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        counts = {"stdout": 0, "stderr": 0}
        readers = [
            _start_in_context(self._pump, process.stdout, "stdout", logging.INFO, counts, None),
            _start_in_context(self._pump, process.stderr, "stderr", logging.WARNING, counts, tail),
        ]
        process.wait()
        for reader in readers:
            reader.join()
        report = _read_report(ours)
        ours.close()
        if report.startswith("error "):
            strerror = os.strerror(int(report.split()[1]))
            reason = f"cannot start {self.spec.argv[0]!r}: {strerror}"
            return RunOutcome(False, error=reason, retryable=False)
        code = int(report.split()[1]) if report.startswith("exit ") else process.returncode
        result = {"exit_code": code, "stdout_lines": counts["stdout"]}
        result["stderr_lines"] = counts["stderr"]
        if self._stopped.is_set():
            return RunOutcome(False, result, error=f"stopped (exit code {code})", stopped=True)
        if code == 0:
            return RunOutcome(True, result)
        said = "\n".join(tail)
        reason = f"command exited with code {code}" + (f": {said}" if said else "")
        if len(reason) > ERROR_MAX_CHARS:
            reason = "..." + reason[-ERROR_MAX_CHARS:]
        return RunOutcome(False, result, error=reason, retryable=True)

    @staticmethod
    def _pump(
        stream: IO[str],
        name: str,
        level: int,
        counts: dict[str, int],
        tail: deque[str] | None,
    ) -> None:
        log = logging.getLogger(STDERR_LOGGER if name == "stderr" else STDOUT_LOGGER)
        with stream:
            for raw in stream:
                line = raw.rstrip("\r\n")
                counts[name] += 1
                if tail is not None:
                    tail.append(line)
                log.log(level, "%s", line, extra={"stream": name})

    def stop(self) -> None:
        """Asks the supervisor to stop the command's group (SIGTERM, SIGKILL after
        ``kill_grace`` s); returns once the command has ended (or a last SIGKILL went out)."""
        with self._lock:
            self._stopped.set()
            process, control = self._process, self._control
        if process is None or process.poll() is not None or control is None:
            return
        with contextlib.suppress(OSError):
            control.sendall(b"stop")
        try:
            process.wait(self.kill_grace + 5)
        except subprocess.TimeoutExpired:  # the supervisor itself hangs: end it all
            _signal_group(process.pid, signal.SIGKILL)


class CallableRun:
    """``module:function(**kwargs)`` in the calling thread; its records carry the task."""

    def __init__(self, spec: PythonCallable) -> None:
        self.spec = spec
        self._stopped = threading.Event()

    def run(self) -> RunOutcome:
        """Imports and calls the function; its return value (JSON-safe) is the result."""
        try:
            function = _resolve_cached(self.spec.target)
        except _CannotResolve as error:
            return RunOutcome(False, error=str(error), retryable=False)
        try:
            value = function(**self.spec.kwargs)
        except Exception as error:
            logging.getLogger("orchestrator.job.callable").exception(
                "%s raised %s", self.spec.target, type(error).__name__
            )
            reason = f"{self.spec.target} raised {type(error).__name__}: {error}"
            return RunOutcome(False, error=reason[:ERROR_MAX_CHARS], stopped=self._stopped.is_set())
        return RunOutcome(True, {"return": json_safe(value)}, stopped=self._stopped.is_set())

    def stop(self) -> None:
        """Marks the run stopped; Python offers no safe way to interrupt a running call."""
        self._stopped.set()


class Refused:
    """A payload the worker cannot run: the job fails at once, without retries."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def run(self) -> RunOutcome:
        """Fails with the reason the payload was refused."""
        return RunOutcome(False, error=self.reason, retryable=False)

    def stop(self) -> None:
        """Nothing runs."""


def start_run(
    payload: Any, *, kill_grace: float = 5.0, env: Mapping[str, str] | None = None
) -> Run:
    """The run for a job's payload (a :class:`Refused` one when the payload is invalid).

    ``env`` goes into a command's environment; a Python callable shares the worker's
    process, whose environment is not per job, so it gets none."""
    try:
        spec = parse_payload(payload)
    except InvalidPayload as error:
        return Refused(str(error))
    if isinstance(spec, ShellCommand):
        return ShellRun(spec, kill_grace=kill_grace, env=env)
    return CallableRun(spec)


class _CannotResolve(Exception):
    pass


@functools.lru_cache(maxsize=256)
def _resolve_cached(target: str) -> Any:
    return _resolve(PythonCallable(target))


def _resolve(spec: PythonCallable) -> Any:
    # Like `python -m`, the working directory is importable: a worker started next to
    # the job's module finds it without PYTHONPATH.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        target: Any = importlib.import_module(spec.module)
    except ImportError as error:
        raise _CannotResolve(f"cannot import module {spec.module!r}: {error}") from None
    except Exception as error:  # the module itself raised while being imported
        raise _CannotResolve(
            f"importing module {spec.module!r} raised {type(error).__name__}: {error}"
        ) from None
    for part in spec.attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise _CannotResolve(
                f"module {spec.module!r} has no attribute {spec.attribute!r}"
            ) from None
    if not callable(target):
        raise _CannotResolve(f"{spec.target} is not callable")
    return target


def _start_in_context(function: Any, *args: Any) -> threading.Thread:
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(function, *args), daemon=True)
    thread.start()
    return thread


def _read_report(control: socket.socket) -> str:
    """The supervisor's last word (``exit CODE`` or ``error ERRNO``); it wrote it before
    exiting, so it is there to read, or there is none."""
    control.setblocking(False)
    try:
        said = control.recv(256).decode(errors="replace")
    except OSError:
        return ""
    return said.strip().splitlines()[-1] if said.strip() else ""


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
