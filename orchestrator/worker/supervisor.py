"""The few lines that stand between a worker and a command, so the command dies with it.

Started by :class:`orchestrator.worker.runners.ShellRun` as ``python -I -S supervisor.py
FD GRACE -- ARGV...`` (standard library only: it starts in milliseconds). It runs the
command in a process group of its own and holds one end of a socket pair whose other end
only the worker holds. Whatever happens to the worker (exit, crash, SIGKILL, OOM kill),
the kernel closes that end, the supervisor reads end-of-file, and the command's whole
process group gets SIGTERM, then SIGKILL ``GRACE`` seconds later. A setsid() command
with PR_SET_PDEATHSIG alone would not do: the signal reaches only the direct child,
not what it started, and fires when the *thread* that forked exits.

The worker asks for a stop by writing ``stop`` on the socket (lease lost, job
cancelled or timed out, shutdown). When the command exits, anything it left running in
its group is stopped the same way, so a job's processes never outlive the job (and a
leftover holding the output pipes cannot keep the job from ending). The supervisor
reports on the socket ``exit CODE`` (negative: killed by that signal, as
``subprocess`` reports) or ``error ERRNO`` when the command could not be started.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_CHILD_SUBREAPER = 36


def _signal_group(pgid: int, signum: int) -> bool:
    """Signals the group; False when nothing is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start(argv: list[str]) -> tuple[int, int | None]:
    """(pid, None) once the command runs, or (pid, errno) when exec failed."""
    err_read, err_write = os.pipe()  # close-on-exec: empty read = exec succeeded
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child, replaced by exec
        try:
            os.close(err_read)
            os.setpgid(0, 0)
            signal.set_wakeup_fd(-1)
            for signum in (*_STOP_SIGNALS, signal.SIGCHLD, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(signum, signal.SIG_DFL)  # Python ignores SIGPIPE and SIGXFSZ
            os.execvp(argv[0], argv)  # noqa: S606 - no shell, by design (see payload.py)
        except OSError as error:
            os.write(err_write, str(error.errno or 0).encode())
        finally:
            os._exit(127)
    os.close(err_write)
    with contextlib.suppress(OSError):  # also from this side: a stop cannot miss the group
        os.setpgid(pid, pid)
    failure = b""
    while chunk := os.read(err_read, 32):
        failure += chunk
    os.close(err_read)
    return pid, int(failure) if failure else None


def supervise(control_fd: int, grace: float, argv: list[str]) -> int:
    """Runs ``argv`` to its end, stopping its group when told or when the worker is gone."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    signal.set_wakeup_fd(wake_write)
    for signum in (*_STOP_SIGNALS, signal.SIGCHLD):
        signal.signal(signum, lambda *_: None)
    _become_subreaper()
    pid, failed = _start(argv)
    if failed is not None:
        os.waitpid(pid, 0)
        _report(control_fd, f"error {failed}")
        return 127
    poller = select.poll()
    poller.register(control_fd, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    kill_at: float | None = None
    code: int | None = None
    while code is None:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        timeout = None if kill_at is None else max(0, int((kill_at - time.monotonic()) * 1000))
        stop = False
        for fd, _events in poller.poll(timeout):
            if fd == wake_read:
                signals = os.read(wake_read, 64)
                stop = stop or any(s in signals for s in _STOP_SIGNALS)
            else:
                try:
                    said = os.read(control_fd, 64)
                except OSError:
                    said = b""
                if not said:  # the worker is gone
                    poller.unregister(control_fd)
                stop = stop or not said or b"stop" in said
        if stop and kill_at is None:
            _signal_group(pid, signal.SIGTERM)
            kill_at = time.monotonic() + grace
        if kill_at is not None and time.monotonic() >= kill_at:
            _signal_group(pid, signal.SIGKILL)
    _stop_leftovers(pid, grace)
    _report(control_fd, f"exit {code}")
    return 0


def _become_subreaper() -> None:
    """Linux: orphans of the command (a daemonising double fork, even one that left the
    group with setsid) become this process's children, so they are found and reaped."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children() -> list[int]:
    """This process's living children (Linux /proc; empty elsewhere)."""
    pids: list[int] = []
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as listing:
                pids.extend(int(p) for p in listing.read().split())
    except OSError:
        pass
    return pids


def _signal_leftovers(pgid: int, signum: int) -> bool:
    """Signals the group and the adopted orphans; False when none is left."""
    found = _signal_group(pgid, signum)
    for child in _children():
        try:
            os.kill(child, signum)
            found = True
        except ProcessLookupError:
            pass
    while True:  # reap what has ended (adopted orphans are ours to reap)
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if not done:
            break
    return found


def _stop_leftovers(pgid: int, grace: float) -> None:
    """What the command left running: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if not _signal_leftovers(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        time.sleep(0.01)
        if not _signal_leftovers(pgid, 0):
            return
    _signal_leftovers(pgid, signal.SIGKILL)


def _report(control_fd: int, message: str) -> None:
    with contextlib.suppress(OSError):  # the worker is gone: nobody to tell
        os.write(control_fd, message.encode() + b"\n")


def main() -> None:
    """``supervisor.py FD GRACE -- ARGV...``."""
    control_fd, grace = int(sys.argv[1]), float(sys.argv[2])
    sys.exit(supervise(control_fd, grace, sys.argv[4:]))


if __name__ == "__main__":
    main()
