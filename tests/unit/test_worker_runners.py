"""The worker's runners on their own: payload parsing, command lines, callables."""

from __future__ import annotations

import logging
import sys
import threading
import time

import pytest

from orchestrator.logs import context
from orchestrator.worker.payload import (
    InvalidPayload,
    PythonCallable,
    ShellCommand,
    parse_payload,
)
from orchestrator.worker.runners import (
    STDERR_LOGGER,
    STDOUT_LOGGER,
    CallableRun,
    Refused,
    ShellRun,
    start_run,
)


class Capture(logging.Handler):
    """Keeps (logger, level, message, task, worker) of every record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.rows: list[tuple[str, str, str, str | None, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        task, worker = context.task_context()
        self.rows.append((record.name, record.levelname, record.getMessage(), task, worker))


@pytest.fixture
def captured():
    handler = Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)


def test_command_is_split_without_a_shell():
    """Quotes group words; `;` and `$HOME` stay literal characters, never shell syntax."""
    spec = parse_payload({"command": "echo 'a b' ; $HOME"})
    assert spec == ShellCommand("echo 'a b' ; $HOME", ("echo", "a b", ";", "$HOME"))


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"command": "echo 'unbalanced"}, "malformed command"),
        ({"command": "   "}, "empty command"),
        ({"command": 5}, "must be a string"),
        ({"callable": "no_colon"}, "expected 'package.module:function'"),
        ({"callable": "m:f", "kwargs": [1]}, "'kwargs' must be a JSON object"),
        ({"command": "true", "callable": "m:f"}, "exactly one of"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_payloads_are_one_clear_line(payload, says):
    """Each malformed payload names what is wrong."""
    with pytest.raises(InvalidPayload, match=says) as caught:
        parse_payload(payload)
    assert "\n" not in str(caught.value)


def test_a_refused_payload_fails_without_retries():
    """The worker fails such a job at once instead of crashing."""
    run = start_run({"command": 'echo "oops'})
    assert isinstance(run, Refused)
    outcome = run.run()
    assert not outcome.ok and not outcome.retryable
    assert "malformed command" in (outcome.error or "")


def test_output_lines_become_records_with_the_task_context(captured):
    """stdout at INFO, stderr at WARNING, each record tagged with the caller's task."""
    context.set_task_context("task-1", "worker-1")
    script = "import sys; print('out one'); print('err one', file=sys.stderr); print('out two')"
    outcome = start_run({"command": f'{sys.executable} -c "{script}"'}).run()
    assert outcome.ok, outcome
    assert outcome.result == {"exit_code": 0, "stdout_lines": 2, "stderr_lines": 1}
    rows = sorted(r for r in captured.rows if r[0] in (STDOUT_LOGGER, STDERR_LOGGER))
    assert rows == [
        (STDERR_LOGGER, "WARNING", "err one", "task-1", "worker-1"),
        (STDOUT_LOGGER, "INFO", "out one", "task-1", "worker-1"),
        (STDOUT_LOGGER, "INFO", "out two", "task-1", "worker-1"),
    ]


def test_a_failing_command_reports_its_exit_code_and_stderr_tail():
    """Exit code != 0 -> a retryable failure carrying the last stderr lines."""
    script = "import sys; [print(f'line {i}', file=sys.stderr) for i in range(30)]; sys.exit(3)"
    outcome = start_run({"command": f'{sys.executable} -c "{script}"'}).run()
    assert not outcome.ok and outcome.retryable
    assert outcome.error is not None
    assert outcome.error.startswith("command exited with code 3: line 10\n")
    assert outcome.error.endswith("line 29")


def test_a_missing_program_fails_without_retries():
    """Retrying a program that does not exist would not help."""
    outcome = start_run({"command": "no-such-program-xyz --flag"}).run()
    assert not outcome.ok and not outcome.retryable
    assert "cannot start 'no-such-program-xyz'" in (outcome.error or "")


def test_stop_ends_the_whole_process_group():
    """A stopped command (and its children) end; the outcome says stopped."""
    run = ShellRun(ShellCommand("sh -c 'sleep 30 & sleep 30'", ("sh", "-c", "sleep 30 & sleep 30")))
    results = []
    thread = threading.Thread(target=lambda: results.append(run.run()))
    thread.start()
    while run._process is None:
        time.sleep(0.01)
    run.stop()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert results[0].stopped and not results[0].ok


def test_callable_runs_with_kwargs_and_returns_its_value(captured):
    """module:function(**kwargs); the return value is the result; its logs carry the task."""
    context.set_task_context("task-2", "worker-2")
    outcome = CallableRun(PythonCallable("tests.support.jobfuncs:add", {"a": 2, "b": 3})).run()
    assert outcome.ok and outcome.result == {"return": {"sum": 5}}
    assert ("tests.jobfuncs", "INFO", "adding 2 and 3", "task-2", "worker-2") in captured.rows


@pytest.mark.parametrize(
    ("target", "says", "retryable"),
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'", False),
        ("tests.support.jobfuncs:missing", "has no attribute 'missing'", False),
        ("tests.support.jobfuncs:log", "is not callable", False),
        ("tests.support.jobfuncs:explode", "raised RuntimeError: boom", True),
    ],
)
def test_callable_failures_are_clear_reasons(target, says, retryable):
    """Import errors and exceptions become a failed outcome, never a crash."""
    outcome = CallableRun(PythonCallable(target)).run()
    assert not outcome.ok
    assert says in (outcome.error or "")
    assert outcome.retryable is retryable


def test_only_one_path_may_report_a_job():
    """Job thread, lease loss and shutdown race for a job: exactly one takes it over."""
    from orchestrator.worker.active import ActiveJob

    active = ActiveJob(job=None, run=Refused("x"))  # type: ignore[arg-type]
    results = []
    barrier = threading.Barrier(3)

    def race(state: str) -> None:
        barrier.wait()
        results.append((state, active.take_over(state)))

    threads = [threading.Thread(target=race, args=(s,)) for s in ("reporting", "lost", "releasing")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [state for state, won in results if won]
    assert len(winners) == 1 and active.state == winners[0]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux's")
def test_what_a_command_leaves_behind_is_stopped_when_it_exits_even_after_setsid():
    """A background child in the command's group, and one that left it with setsid (the
    supervisor adopts it as subreaper): both are gone when the run returns, and the run
    still reports the command's own exit."""
    script = "sleep 300 & echo $!; setsid sleep 301 & echo $!"
    outcome_lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            outcome_lines.append(record.getMessage())

    handler = Lines()
    logger = logging.getLogger(STDOUT_LOGGER)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        outcome = start_run({"command": f"sh -c '{script}'"}).run()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert outcome.ok, outcome
    pids = [int(text) for text in outcome_lines]
    assert len(pids) == 2
    assert not any(_alive(pid) for pid in pids)
