"""JSON and text log lines: the seed's shape, context fields, correlation ids, setup."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

import orchestrator.logs as logs
from orchestrator.config import ACCEPTED, load_settings
from orchestrator.logs import (
    JsonFormatter,
    LogContext,
    TextFormatter,
    clear_correlation_id,
    configure_structured_logging,
    get_logger,
    init_from_env,
    peek_correlation_id,
    record_extra,
    set_correlation_id,
    set_cycle_number,
    set_task_context,
)

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEED_KEYS = {"timestamp", "level", "logger", "message", "correlation_id", "source", "extra"}
# 2026-11-23T18:20:00.123Z
FIXED = datetime(2026, 11, 23, 18, 20, 0, tzinfo=UTC).timestamp() + 0.123


@pytest.fixture(autouse=True)
def restore_logging():
    """Leaves the root logger, the correlation id and the cycle as the test found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    clear_correlation_id()
    set_cycle_number(None)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    clear_correlation_id()
    set_cycle_number(None)


class Captured:
    """A private logger whose lines go to a string, parsed back on demand.

    The logger is not registered with logging's manager: nothing else (root handlers,
    pytest's capture) sees its records, and no test leaves a logger behind.
    """

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)
        self.logger = logging.Logger(f"orchestrator.test.{uuid.uuid4().hex[:8]}", logging.DEBUG)
        self.logger.addHandler(self.handler)

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text().splitlines()]

    def close(self) -> None:
        self.logger.removeHandler(self.handler)


@pytest.fixture
def captured():
    """A JSON-formatting private logger."""
    cap = Captured(JsonFormatter())
    yield cap
    cap.close()


def make_record(msg="message", level=logging.INFO, created=FIXED, **extra) -> logging.LogRecord:
    """A record as logging makes it, at a fixed time, with ``extra`` keys set on it."""
    record = logging.LogRecord(
        "orchestrator.jobs", level, "/app/orchestrator/jobs.py", 350, msg, (), None, "submit_job"
    )
    record.created, record.msecs = created, round((created - int(created)) * 1000, 3)
    record.__dict__.update(extra)
    return record


def test_json_line_has_the_seed_shape_and_types(captured):
    """One line holding exactly the seed's keys, each of the documented type and value."""
    set_correlation_id("abc123def456")
    with LogContext(job_id="xyz789", provider="replicate"):
        line_no = inspect.currentframe().f_lineno + 1
        captured.logger.info("Job %s", "submitted", extra={"cost_estimate": 2.5})
    text = captured.text()
    assert text.count("\n") == 1 and text.endswith("\n")
    (line,) = captured.lines()
    assert set(line) == SEED_KEYS
    assert TIMESTAMP.match(line["timestamp"])
    assert line["level"] == "INFO" and line["logger"] == captured.logger.name
    assert line["message"] == "Job submitted"
    assert line["correlation_id"] == "abc123def456"
    assert line["source"] == {
        "file": "test_structured_logging.py",
        "line": line_no,
        "function": "test_json_line_has_the_seed_shape_and_types",
    }
    assert line["extra"] == {"job_id": "xyz789", "provider": "replicate", "cost_estimate": 2.5}


def test_timestamp_is_utc_with_milliseconds_whatever_the_local_zone(monkeypatch):
    """record.created renders as ISO 8601 UTC with 3 decimals and Z, even under TZ=Asia/Kolkata."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        line = json.loads(JsonFormatter().format(make_record()))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert line["timestamp"] == "2026-11-23T18:20:00.123Z"
    assert TIMESTAMP.match(line["timestamp"])


def test_timestamp_of_a_live_record_is_now_in_utc(captured):
    """A record logged now carries the current UTC time."""
    captured.logger.info("now")
    stamp = captured.lines()[0]["timestamp"]
    assert TIMESTAMP.match(stamp)
    logged = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - logged).total_seconds()) < 5


def test_correlation_id_is_null_and_not_generated_when_unset(captured):
    """Without a correlation id the line says null, and logging doesn't invent one."""
    captured.logger.info("no request")
    assert captured.lines()[0]["correlation_id"] is None
    assert peek_correlation_id() is None


def test_call_extra_beats_the_context_field_of_the_same_name(captured):
    """extra= keys and LogContext fields merge; the call's own value wins a clash."""
    with LogContext(job_id="ctx", provider="replicate"):
        captured.logger.info("x", extra={"job_id": "call", "attempt": 2})
    assert captured.lines()[0]["extra"] == {"job_id": "call", "provider": "replicate", "attempt": 2}


def test_nested_log_context_merges_and_restores(captured):
    """The seed's example: inner step fields merge in and disappear when the block ends."""
    with LogContext(job_id="xyz789", provider="replicate"):
        captured.logger.info("Starting job processing")
        with LogContext(step="validation"):
            captured.logger.info("Validating configuration")
        with LogContext(step="submission", provider="other"):
            captured.logger.info("Submitting to provider")
        captured.logger.info("Job processing complete")
    captured.logger.info("outside")
    base = {"job_id": "xyz789", "provider": "replicate"}
    assert [line["extra"] for line in captured.lines()] == [
        base,
        {**base, "step": "validation"},
        {"job_id": "xyz789", "provider": "other", "step": "submission"},
        base,
        {},
    ]


def test_no_log_record_attribute_leaks_into_extra(captured):
    """extra holds only what was passed: no args, levelno, pathname, thread, taskName..."""
    try:
        raise ValueError("bad")
    except ValueError:
        captured.logger.exception("failed %s", "job", extra={"job_id": "j1"}, stack_info=True)
    (line,) = captured.lines()
    assert line["extra"] == {"job_id": "j1"}
    leaked = {"args", "levelno", "pathname", "thread", "taskName", "msg", "exc_info", "created"}
    assert not leaked & set(line["extra"])
    record = make_record(job_id="j2", _handler_note="private")
    assert record_extra(record) == {"job_id": "j2"}


def test_exception_text_only_when_there_is_one(captured):
    """logger.exception() adds the traceback; a plain line has no exception key."""
    captured.logger.info("fine")
    try:
        raise ValueError("bad input\nsecond line")
    except ValueError:
        captured.logger.exception("failed")
    fine, failed = captured.lines()
    assert "exception" not in fine and "stack_info" not in fine
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad input\nsecond line" in failed["exception"]
    assert len(captured.text().splitlines()) == 2


def test_every_line_break_is_escaped_so_a_record_stays_one_line(captured):
    """U+2028, U+0085 and friends, which str.splitlines() splits on, never appear raw."""
    tricky = "a\nb\u2028c\u2029d\x85e\x0bf"
    captured.logger.info(tricky, extra={"field": tricky})
    assert len(captured.text().splitlines()) == 1
    (line,) = captured.lines()
    assert line["message"] == tricky and line["extra"]["field"] == tricky
    text = TextFormatter().format(make_record(tricky, field=tricky))
    assert len(text.splitlines()) == 1


def test_stack_info_is_kept_and_added_to_errors_when_asked():
    """stack_info=True is written; include_stack_info adds the stack to ERROR lines only."""
    cap = Captured(JsonFormatter(include_stack_info=True))
    try:
        cap.logger.warning("warn")
        cap.logger.error("err")
        cap.logger.info("info", stack_info=True)
        try:
            raise KeyError("k")
        except KeyError:
            cap.logger.exception("exc")
    finally:
        cap.close()
    warn, err, info, exc = cap.lines()
    assert "stack_info" not in warn
    assert err["stack_info"].startswith("Stack (most recent call last):")
    assert "test_stack_info_is_kept_and_added_to_errors_when_asked" in err["stack_info"]
    assert "test_stack_info_is_kept" in info["stack_info"]
    assert "exception" in exc and "stack_info" not in exc


def test_cycle_and_task_ids_join_extra(captured):
    """The cycle number and the task/worker ids of the context appear in extra."""

    def body():
        set_cycle_number(7)
        set_task_context("task-1", "worker-9")
        captured.logger.info("tagged")

    contextvars.copy_context().run(body)
    assert captured.lines()[0]["extra"] == {
        "cycle_number": 7,
        "task_id": "task-1",
        "worker_id": "worker-9",
    }


def test_threads_each_log_their_own_context_and_correlation_id(captured):
    """16 threads logging at once: every line pairs a thread's fields with its own id."""
    barrier = threading.Barrier(16)

    def work(n: int) -> None:
        set_correlation_id(f"cid-{n}")
        with LogContext(worker=n):
            barrier.wait()
            for i in range(50):
                captured.logger.info("line %d", i, extra={"i": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = captured.lines()
    assert len(lines) == 16 * 50
    for line in lines:
        assert line["correlation_id"] == f"cid-{line['extra']['worker']}"
        assert line["message"] == f"line {line['extra']['i']}"
    assert {line["extra"]["worker"] for line in lines} == set(range(16))


def test_asyncio_tasks_each_log_their_own_context_and_correlation_id(captured):
    """50 interleaved tasks: every line pairs a task's fields with its own id."""

    async def work(n: int) -> None:
        set_correlation_id(f"cid-{n}")
        async with LogContext(task=n):
            for _ in range(5):
                await asyncio.sleep(0)
                captured.logger.info("step")

    async def main() -> None:
        with LogContext(run="r1"):
            await asyncio.gather(*(work(n) for n in range(50)))

    asyncio.run(main())
    lines = captured.lines()
    assert len(lines) == 250
    for line in lines:
        assert line["correlation_id"] == f"cid-{line['extra']['task']}"
        assert line["extra"]["run"] == "r1"
    assert {line["extra"]["task"] for line in lines} == set(range(50))


def test_seed_jq_and_grep_recipes_work_on_the_log_file(tmp_path, capsys):
    """select(.correlation_id == ...) and select(.extra.job_id == ...) pick the right lines."""
    path = tmp_path / "var" / "log" / "cloud.log"
    configure_structured_logging(json_output=True, log_file=path)
    logger = get_logger("orchestrator.jobs")
    set_correlation_id("abc123")
    with LogContext(job_id="xyz789"):
        logger.info("Job submitted successfully")
    logger.info("still the request")
    set_correlation_id("other")
    with LogContext(job_id="xyz789"):
        logger.warning("Job polled\nby another request")
    with LogContext(job_id="nope"):
        logger.info("unrelated")
    capsys.readouterr()

    text = path.read_text(encoding="utf-8")
    parsed = [json.loads(line) for line in text.splitlines()]
    by_cid = [line["message"] for line in parsed if line["correlation_id"] == "abc123"]
    by_job = [line["message"] for line in parsed if line["extra"].get("job_id") == "xyz789"]
    assert by_cid == ["Job submitted successfully", "still the request"]
    assert by_job == ["Job submitted successfully", "Job polled\nby another request"]
    grep = [line for line in text.splitlines() if '"correlation_id": "abc123"' in line]
    assert len(grep) == 2

    jq = shutil.which("jq")
    if jq is None:
        return  # the Python selections above already hold the recipes' meaning
    for program, expected in [
        ('select(.correlation_id == "abc123") | .message', by_cid),
        ('select(.extra.job_id == "xyz789") | .message', by_job),
    ]:
        out = subprocess.run(
            [jq, "-c", program, str(path)], capture_output=True, text=True, check=True
        ).stdout
        assert [json.loads(line) for line in out.splitlines()] == expected


def test_configure_twice_replaces_only_its_own_handlers(tmp_path, capsys):
    """A second call leaves one stdout handler, drops the old file, and keeps foreign ones."""
    seen: list[logging.LogRecord] = []
    foreign = logging.Handler()
    foreign.emit = seen.append
    logging.getLogger().addHandler(foreign)
    old_file = tmp_path / "old.log"
    configure_structured_logging(json_output=True, log_file=old_file)
    configure_structured_logging(json_output=False)
    get_logger("orchestrator.jobs").info("once")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].endswith("INFO  orchestrator.jobs: once")
    assert len(seen) == 1 and foreign in logging.getLogger().handlers
    assert old_file.read_text(encoding="utf-8") == ""


def test_the_console_keeps_its_level_when_a_database_handler_lowers_the_root(capsys):
    """ORCHESTRATOR_LOG_LEVEL=WARNING with a worker shipping INFO to the database (which
    lowers the root logger's level): INFO reaches the database handler, not stdout."""
    shipped: list[logging.LogRecord] = []
    database = logging.Handler(logging.INFO)
    database.emit = shipped.append
    root = logging.getLogger()
    configure_structured_logging("WARNING", json_output=False)
    root.addHandler(database)
    root.setLevel(logging.INFO)  # as `orchestrator worker` does for DB_LOG_LEVEL=INFO
    try:
        get_logger("orchestrator.worker").info("Running job j1")
        get_logger("orchestrator.worker").warning("Claim failed")
    finally:
        root.removeHandler(database)
    assert [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines()] == [
        "Claim failed"
    ]
    assert [r.getMessage() for r in shipped] == ["Running job j1", "Claim failed"]


def test_http_request_lines_are_quiet_unless_debug_or_chosen(capsys):
    """httpx's INFO line per request is held back above DEBUG, shown at DEBUG, and a
    level the application set for httpx is never overridden."""
    httpx_log = logging.getLogger("httpx")
    try:
        configure_structured_logging("INFO", json_output=False)
        httpx_log.info("HTTP Request: POST /rest/v1/rpc/func_claim_jobs")
        httpx_log.warning("HTTP retry")
        assert [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines()] == [
            "HTTP retry"
        ]
        configure_structured_logging("DEBUG", json_output=False)
        httpx_log.info("HTTP Request: shown")
        assert capsys.readouterr().out.endswith("httpx: HTTP Request: shown\n")
        httpx_log.setLevel(logging.INFO)  # the application's own choice
        configure_structured_logging("WARNING", json_output=False)
        assert httpx_log.level == logging.INFO
    finally:
        configure_structured_logging("DEBUG", json_output=False)  # releases httpx
        httpx_log.setLevel(logging.NOTSET)


def test_level_names_are_checked():
    """Any case of the five names works; anything else is a ValueError naming them."""
    configure_structured_logging("debug")
    assert logging.getLogger().level == logging.DEBUG
    with pytest.raises(ValueError, match="DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        configure_structured_logging("LOUD")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_init_from_env_follows_the_settings(monkeypatch, tmp_path, capsys, fmt):
    """ORCHESTRATOR_LOG_FORMAT/LEVEL/FILE choose the format, the threshold and the file."""
    for name in ACCEPTED:
        monkeypatch.delenv(name, raising=False)
    log_file = tmp_path / "hub.log"
    monkeypatch.setenv("ORCHESTRATOR_LOG_FORMAT", fmt)
    monkeypatch.setenv("ORCHESTRATOR_LOG_LEVEL", "warning")
    monkeypatch.setenv("ORCHESTRATOR_LOG_FILE", str(log_file))
    init_from_env(load_settings(env_file=None))
    logger = get_logger("orchestrator.jobs")
    logger.info("hidden")
    logger.warning("shown")
    out = capsys.readouterr().out.splitlines()
    assert out == log_file.read_text(encoding="utf-8").splitlines()
    assert len(out) == 1
    if fmt == "json":
        assert json.loads(out[0])["message"] == "shown"
    else:
        assert re.match(
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} WARNING orchestrator.jobs: shown$", out[0]
        )


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_values_json_cannot_encode_become_text(captured):
    """Objects, NaN, tuple keys, cycles and a raising __str__ still give one valid line."""
    cyclic: list = []
    cyclic.append(cyclic)
    captured.logger.info(
        "odd",
        extra={
            "path": Path("/tmp/x"),
            "nan": float("nan"),
            "nested": {(1, 2): "tuple key", "ok": [1, 2]},
            "cyclic": cyclic,
            "bad": Unprintable(),
            "when": datetime(2026, 1, 2, tzinfo=UTC),
            "huge": 10**5000,
        },
    )
    captured.logger.info("%s and %s", "only one")
    odd, mismatched = captured.lines()
    assert odd["extra"]["path"] == "/tmp/x" and odd["extra"]["nan"] == "nan"
    assert odd["extra"]["nested"] == {"(1, 2)": "tuple key", "ok": [1, 2]}
    assert odd["extra"]["bad"] == "<unprintable Unprintable>"
    assert odd["extra"]["when"].startswith("2026-01-02")
    assert odd["extra"]["huge"] == "<unprintable int>"
    assert "only one" in mismatched["message"]


def test_text_line_shape_and_traceback():
    """The text format: one readable line, fields and cid at the end, traceback below."""
    set_correlation_id("abc123")
    record = make_record(job_id="xyz789", provider="replicate")
    with LogContext(note="two words"):
        line = TextFormatter().format(record)
    assert line == (
        "2026-11-23 18:20:00.123 INFO  orchestrator.jobs: message "
        '[note="two words" job_id=xyz789 provider=replicate] (cid=abc123)'
    )
    try:
        raise ValueError("bad")
    except ValueError:
        record = make_record("a\nforged line", level=logging.ERROR)
        record.exc_info = sys.exc_info()
    first, *rest = TextFormatter().format(record).splitlines()
    assert first.endswith("ERROR orchestrator.jobs: a\\nforged line (cid=abc123)")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: bad"


def test_get_logger_is_logging_get_logger():
    """get_logger exists for the seed's API and is plain logging.getLogger."""
    assert get_logger("orchestrator.jobs") is logging.getLogger("orchestrator.jobs")


def test_logs_package_exports_what_all_lists():
    """Every name in orchestrator.logs.__all__ resolves and has a docstring."""
    for name in logs.__all__:
        value = getattr(logs, name)
        if not isinstance(value, str | dict):
            assert value.__doc__, name
