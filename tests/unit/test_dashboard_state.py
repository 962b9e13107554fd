"""Pure parts of the dashboard: levels, filters, retry delays, rendering, error lines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.dashboard.calls import DashboardSummary
from orchestrator.dashboard.poller import describe_error
from orchestrator.dashboard.render import SOURCE_WIDTH, clock, render_detail, render_row
from orchestrator.dashboard.state import (
    Backoff,
    TailFilter,
    TailState,
    next_min_level,
    parse_level,
)
from orchestrator.dashboard.widgets import summary_text
from orchestrator.db.failures import refusal
from orchestrator.errors import DatabaseUnavailable, QueryInputError
from orchestrator.query import Cursor, LogRow
from orchestrator.query.tailing import NIL_ID

WHEN = datetime(2026, 12, 1, 8, 1, 2, 345678, tzinfo=UTC)


def row(**overrides) -> LogRow:
    base = {
        "id": str(uuid.uuid4()),
        "timestamp": WHEN,
        "observed_at": WHEN,
        "source_type": "worker",
        "source_id": "gpu-1",
        "log_level": "INFO",
        "severity_number": 9,
        "logger_name": None,
        "message": "hello",
        "task_id": None,
        "worker_id": "gpu-1",
        "cycle_number": None,
        "correlation_id": None,
        "exception": None,
    }
    base.update(overrides)
    return LogRow(**base)


def test_parse_level_accepts_any_case_and_debug_means_no_filter():
    """Names in any case; DEBUG is 'everything'; anything else says what is accepted."""
    assert parse_level(" warning ") == "WARNING"
    assert parse_level("debug") is None
    assert parse_level(None) is None
    assert parse_level("warn") == "WARNING"
    with pytest.raises(QueryInputError, match=r"unknown level 'loud'; accepted: DEBUG, INFO"):
        parse_level("loud")


def test_l_cycles_through_the_levels_and_back_to_everything():
    """None -> INFO -> WARNING -> ERROR -> CRITICAL -> None."""
    seen = [None]
    for _ in range(5):
        seen.append(next_min_level(seen[-1]))
    assert seen == [None, "INFO", "WARNING", "ERROR", "CRITICAL", None]


def test_filter_blanks_mean_any_and_describe_is_one_short_line():
    """Blank texts become None; the description names only what is set."""
    assert TailFilter(source_type=" ", worker_id="", search="  ") == TailFilter()
    assert TailFilter().describe() == "all logs"
    described = TailFilter("ERROR", "worker", "gpu-1", "OOM").describe()
    assert described == 'level>=ERROR source=worker worker=gpu-1 "OOM"'


def test_a_filter_change_restarts_the_tail_under_a_new_generation():
    """A new filter forgets what was shown and waits; the same filter changes nothing."""
    state = TailState(TailFilter())
    state.arrived([row()], filled=True, watermark=None)
    state.paused = True
    state.arrived([row()], filled=True, watermark=None)
    assert not state.change_filter(TailFilter())
    assert state.generation == 0 and state.filled and state.start is not None
    assert state.change_filter(TailFilter(min_level="ERROR"))
    assert (state.generation, state.start, state.filled, state.pending) == (1, None, False, [])


def test_a_refresh_shows_new_and_late_rows_once():
    """Each read starts the lag before the newest row shown; rows shown already are
    dropped, a row that arrived late (older than the newest shown) is shown once."""
    state = TailState(TailFilter(), lag=timedelta(seconds=10))
    first = row(timestamp=WHEN)
    assert state.arrived([first], filled=True, watermark=None) == [first]
    assert state.start == Cursor((WHEN - timedelta(seconds=10)).isoformat(), NIL_ID)
    newer = row(timestamp=WHEN + timedelta(seconds=3))
    late = row(timestamp=WHEN + timedelta(seconds=1))
    assert state.arrived([first, newer], filled=True, watermark=None) == [newer]
    assert state.arrived([first, late, newer], filled=True, watermark=None) == [late]
    assert state.arrived([first, late, newer], filled=True, watermark=None) == []


def test_an_empty_fill_starts_the_next_read_at_its_end():
    """No rows yet: the next read starts the lag before where the fill stopped."""
    state = TailState(TailFilter(), lag=timedelta(seconds=10))
    assert state.start is None
    assert state.arrived([], filled=True, watermark=WHEN) == []
    assert state.start == Cursor((WHEN - timedelta(seconds=10)).isoformat(), NIL_ID)


def test_while_paused_new_rows_wait_and_are_counted():
    """Paused, rows are read but wait (the status line counts them); resume hands
    them over in order; reading stops once max_pending wait."""
    state = TailState(TailFilter(), max_pending=3)
    state.arrived([row(timestamp=WHEN)], filled=True, watermark=None)
    state.paused = True
    waiting = [row(timestamp=WHEN + timedelta(seconds=i)) for i in range(1, 4)]
    assert state.arrived(waiting[:2], filled=True, watermark=None) == []
    assert len(state.pending) == 2 and not state.pending_full
    state.arrived(waiting, filled=True, watermark=None)
    assert state.pending == waiting and state.pending_full
    assert state.resume() == waiting and not state.paused and state.pending == []


def test_the_level_filter_can_be_exact_and_the_task_is_a_uuid():
    """exact_level asks for that level only; a task filter is checked as a UUID."""
    exact = TailFilter(min_level="ERROR", exact_level=True)
    assert exact.query().levels == ("ERROR",) and exact.query().min_level is None
    assert TailFilter(min_level="ERROR").query().min_level == "ERROR"
    assert exact.describe() == "level=ERROR"
    assert TailFilter(exact_level=True).exact_level is False  # no level, nothing exact
    task = TailFilter(task_id=" 0192F0C1-7A5E-7C3D-9B1A-3F2E4D5C6B7A ")
    assert task.task_id == "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a"
    assert task.describe() == "task=0192f0c1" and task.query().task_id == task.task_id
    with pytest.raises(QueryInputError, match="malformed task id 'nope'"):
        TailFilter(task_id="nope")


def test_backoff_doubles_up_to_the_cap_and_restarts_after_success():
    """base, 2 base, 4 base ... capped; reset starts over."""
    backoff = Backoff(base=5, cap=30)
    assert [backoff.next_delay() for _ in range(5)] == [5, 10, 20, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 5


def test_render_colours_by_level_and_adds_the_exceptions_last_line():
    """The level and message carry the level's style; the exception's last line follows."""
    text = render_row(
        row(
            log_level="ERROR",
            message="Task failed",
            exception="Traceback (most recent call last):\n  ...\nMemoryError: CUDA out of memory\n",
        ),
        today=WHEN.date(),
    )
    assert text.plain.startswith("08:01:02 ERROR gpu-1                     Task failed")
    assert text.plain.endswith("Task failed\n    -> MemoryError: CUDA out of memory")
    styles = {text.plain[span.start : span.end].strip(): str(span.style) for span in text.spans}
    assert styles["ERROR"] == "bold red"
    assert styles["Task failed"] == "red"
    info = render_row(row(message="fine"))
    assert "fine" not in {info.plain[s.start : s.end] for s in info.spans if s.style}


def test_render_shows_task_cycle_and_worker_so_two_jobs_are_told_apart():
    """Two jobs' "frame 2 rendered" differ by their task; a cycle shows as #N, a worker
    that is not the writer as @worker."""
    task_a, task_b = "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a", "7d1e0000-0000-4000-8000-000000000001"
    a = render_row(row(task_id=task_a, message="frame 2 rendered"), today=WHEN.date()).plain
    b = render_row(row(task_id=task_b, message="frame 2 rendered"), today=WHEN.date()).plain
    assert "0192f0c1 frame 2 rendered" in a and "7d1e0000 frame 2 rendered" in b
    orchestrator = render_row(
        row(source_type="orchestrator_gpu", source_id="orch-1", worker_id="gpu-3",
            cycle_number=42, message="assigned"),
        today=WHEN.date(),
    ).plain  # fmt: skip
    assert "orch-1" in orchestrator and "#42 @gpu-3 assigned" in orchestrator


def test_a_row_not_from_today_carries_its_date():
    """Today's rows show the time; older ones the date too."""
    assert render_row(row(), today=WHEN.date()).plain.startswith("08:01:02 INFO")
    yesterday = WHEN.date() + timedelta(days=1)
    assert render_row(row(), today=yesterday).plain.startswith("2026-12-01 08:01:02 INFO")


def test_render_shortens_long_sources_and_flattens_multiline_messages():
    """A long worker name is cut with a mark; newlines in a message do not break the tail."""
    text = render_row(row(source_id="w" * 40, message="one\ntwo"))
    assert "w" * (SOURCE_WIDTH - 1) + "~" in text.plain
    assert "one two" in text.plain


def test_levels_fit_five_columns():
    """WARNING and CRITICAL are shortened so every level takes five columns."""
    today = WHEN.date()
    assert render_row(row(log_level="WARNING"), today=today).plain[9:15] == "WARN  "
    assert render_row(row(log_level="CRITICAL"), today=today).plain[9:15] == "CRIT  "


def test_clock_shows_utc():
    """Times are shown in UTC whatever offset they carry."""
    when = datetime.fromisoformat("2026-12-01T10:00:00+02:00")
    assert clock(when, today=when.date()) == "08:00:00"


def test_the_detail_has_every_column_the_whole_exception_and_the_metadata():
    """What Enter shows: each column by name, the exception whole, the metadata."""
    from rich.console import Console

    detailed = row(task_id="0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a", cycle_number=7,
                   correlation_id="req-1", logger_name="demo.worker",
                   exception="Traceback (most recent call last):\n  File x\nValueError: bad",
                   metadata={"vram_gb": 79.5, "step": "generate"})  # fmt: skip
    console = Console(width=120, record=True)
    console.print(render_detail(detailed))
    text = console.export_text()
    for value in (
        detailed.id,
        "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a",
        "req-1",
        "demo.worker",
        "worker / gpu-1",
        "INFO (severity 9)",
        "Traceback (most recent call last):",
        "ValueError: bad",
        '"vram_gb": 79.5',
        "2026-12-01T08:01:02.345678+00:00",
    ):
        assert value in text, value  # fmt: skip


def test_error_lines_separate_unreachable_from_failed_queries():
    """Connection trouble reads 'database unreachable'; a missing function hints migrate.
    The executors hand the poller the hub's errors, never a driver's."""
    assert describe_error(DatabaseUnavailable("cannot connect: refused\nmore")) == (
        "database unreachable: cannot connect: refused"
    )
    assert describe_error(OSError("no route")).startswith("database unreachable")
    lost = DatabaseUnavailable("lost the connection to the db: server closed")
    assert describe_error(lost).startswith("database unreachable: lost the connection")
    missing = describe_error(refusal("42883", "function x() does not exist", "the db"))
    assert missing == (
        "query failed: the db lacks a hub function (function x() does not exist); "
        "run `orchestrator migrate`"
    )
    assert len(describe_error(ValueError("x" * 500))) < 200


def test_summary_text_shows_queue_only_once_it_exists():
    """No queue number until the job tables exist."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    base = DashboardSummary(now, 42.0, 0.024, 3, (0,) * 60)
    assert summary_text(base).plain == "logs/min 42  errors 2.4%  workers 3"
    with_queue = DashboardSummary(now, 1.5, 0, 0, (0,) * 60, queue_depth=5)
    assert summary_text(with_queue).plain == "logs/min 1.5  errors 0.0%  workers 0  queue 5"
    assert "-" in summary_text(None).plain
