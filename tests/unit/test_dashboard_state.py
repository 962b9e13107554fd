"""Pure parts of the dashboard: levels, filters, retry delays, rendering, error lines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from orchestrator.dashboard.calls import DashboardSummary
from orchestrator.dashboard.poller import describe_error
from orchestrator.dashboard.render import SOURCE_WIDTH, clock, render_row
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
    """A new filter forgets the cursor; the same filter changes nothing."""
    state = TailState(TailFilter(), cursor=Cursor("t", "i"), filled=True)
    assert not state.change_filter(TailFilter())
    assert state.generation == 0 and state.filled
    assert state.change_filter(TailFilter(min_level="ERROR"))
    assert (state.generation, state.cursor, state.filled) == (1, None, False)


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
        )
    )
    assert text.plain.startswith("08:01:02 ERROR gpu-1            Task failed")
    assert text.plain.endswith("Task failed\n    -> MemoryError: CUDA out of memory")
    styles = {text.plain[span.start : span.end].strip(): str(span.style) for span in text.spans}
    assert styles["ERROR"] == "bold red"
    assert styles["Task failed"] == "red"
    info = render_row(row(message="fine"))
    assert "fine" not in {info.plain[s.start : s.end] for s in info.spans if s.style}


def test_render_shortens_long_sources_and_flattens_multiline_messages():
    """A long worker name is cut with a mark; newlines in a message do not break the tail."""
    text = render_row(row(source_id="w" * 40, message="one\ntwo"))
    assert "w" * (SOURCE_WIDTH - 1) + "~" in text.plain
    assert "one two" in text.plain


def test_levels_fit_five_columns():
    """WARNING and CRITICAL are shortened so every level takes five columns."""
    assert render_row(row(log_level="WARNING")).plain[9:15] == "WARN  "
    assert render_row(row(log_level="CRITICAL")).plain[9:15] == "CRIT  "


def test_clock_shows_utc():
    """Times are shown in UTC whatever offset they carry."""
    assert clock(datetime.fromisoformat("2026-12-01T10:00:00+02:00")) == "08:00:00"


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
