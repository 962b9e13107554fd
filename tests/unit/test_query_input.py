"""Query input checks that need no database: times, levels, ids, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator.errors import HubError, QueryInputError
from orchestrator.query import Cursor, LogFilter, LogPage, calls
from orchestrator.query.model import split_levels
from orchestrator.query.timespec import parse_duration, parse_time

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        (" 2H ", timedelta(hours=2)),
        ("0.5h", timedelta(minutes=30)),
    ],
)
def test_durations(text, expected):
    """Units s, m, h, d, w, combinable, case and blanks ignored."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "m", "15x", "-2h", "2 hours", "1h-5m", "0m"])
def test_malformed_durations_name_what_is_accepted(text):
    """Anything else is one QueryInputError (a HubError) saying what is accepted."""
    with pytest.raises(QueryInputError, match="15m") as info:
        parse_duration(text, what="--since")
    assert isinstance(info.value, HubError)
    assert "\n" not in str(info.value)


def test_times_are_durations_ago_or_iso():
    """`2h` is two hours before now; ISO times keep their zone; no zone means UTC."""
    assert parse_time("2h", now=NOW) == NOW - timedelta(hours=2)
    assert parse_time("now", now=NOW) == NOW
    assert parse_time("2026-11-30T10:00:00Z") == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert parse_time("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    plus_one = parse_time("2026-11-30T10:00:00+01:00")
    assert plus_one.utcoffset() == timedelta(hours=1)
    assert parse_time("2026-11-30 10:00") == datetime(2026, 11, 30, 10, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "12:00pm", "2026/11/30"])
def test_malformed_times(text):
    """Neither a duration nor ISO 8601: one line naming both forms."""
    with pytest.raises(QueryInputError, match="ISO 8601"):
        parse_time(text, what="--until")


def test_levels_are_canonical_and_checked():
    """Any case, WARN/FATAL aliases, comma lists and repeats; unknown names refused."""
    assert split_levels(["error,critical", "warn", "ERROR"]) == ("ERROR", "CRITICAL", "WARNING")
    assert LogFilter(min_level="fatal").min_level == "CRITICAL"
    with pytest.raises(QueryInputError, match="unknown level 'loud'; accepted: DEBUG"):
        split_levels(["info,loud"])


def test_filter_takes_one_level_as_a_string_and_checks_cycles():
    """levels="error" is one level, not five letters; a cycle must be an integer."""
    assert LogFilter(levels="error").levels == ("ERROR",)  # type: ignore[arg-type]
    assert LogFilter(cycle_number="7").cycle_number == 7  # type: ignore[arg-type]
    with pytest.raises(QueryInputError, match="cycle number must be an integer"):
        LogFilter(cycle_number="seven")  # type: ignore[arg-type]
    with pytest.raises(QueryInputError, match="out of range"):
        LogFilter(cycle_number=2**31)


def test_filter_normalises_ids_and_times():
    """Task ids become canonical UUIDs; naive times are read as UTC."""
    flt = LogFilter(
        task_id="0192F0C1-7A5E-7C3D-9B1A-3F2E4D5C6B7A",
        since=datetime(2026, 11, 30, 10),
        until=datetime(2026, 11, 30, 12, tzinfo=timezone(timedelta(hours=1))),
        search="",
    )
    assert flt.task_id == "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a"
    assert flt.since is not None and flt.since.tzinfo is UTC
    assert flt.search is None
    with pytest.raises(QueryInputError, match="malformed task id 'abc'"):
        LogFilter(task_id="abc")
    with pytest.raises(QueryInputError, match="empty time window"):
        LogFilter(since=NOW, until=NOW - timedelta(seconds=1))


def test_calls_send_only_what_is_set():
    """None filters are left out (the SQL defaults apply); times go as ISO text."""
    call = calls.query_logs(LogFilter(since=NOW, levels=("error",)), limit=5)
    assert call.function == "func_query_logs"
    assert call.args == {
        "since": NOW.isoformat(),
        "levels": ["ERROR"],
        "newest_first": False,
        "row_limit": 5,
    }
    after = Cursor("2026-12-01T07:00:00+00:00", "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a")
    timeline = calls.task_timeline("0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a", after=after)
    assert timeline.args["after_timestamp"] == after.timestamp
    assert timeline.args["row_limit"] == 1000
    for bad in (0, 10_001):
        with pytest.raises(QueryInputError, match="limit must be between 1 and 10000"):
            calls.query_logs(LogFilter(), limit=bad)
    with pytest.raises(QueryInputError, match="malformed log id"):
        calls.log_cursor("not-a-uuid")


def test_page_decodes_rows_and_cursor():
    """A page as the database returns it becomes typed rows and a Cursor."""
    raw_row = {
        "id": "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a",
        "timestamp": "2026-12-01T07:00:00.123456+00:00",
        "observed_at": "2026-12-01T07:00:00.2+00:00",
        "source_type": "worker",
        "source_id": "gpu-1",
        "log_level": "INFO",
        "severity_number": 9,
        "logger_name": None,
        "message": "m",
        "task_id": None,
        "worker_id": "gpu-1",
        "cycle_number": None,
        "correlation_id": None,
        "exception": None,
        "metadata": {"k": 1},
    }
    page = LogPage.from_json({"rows": [raw_row], "more": True, "next": raw_row})
    assert page.next == Cursor(raw_row["timestamp"], raw_row["id"])
    assert page.last == page.rows[0].cursor
    assert page.rows[0].to_json()["timestamp"] == raw_row["timestamp"]
    assert page.rows[0].to_json()["metadata"] == {"k": 1}


def test_a_cursor_from_the_database_equals_the_one_taken_from_its_row():
    """PostgreSQL's JSON drops trailing zeros of the microseconds (.30712); Python's
    isoformat keeps six digits (.307120): both name the same row, so both are equal."""
    moment = datetime(2026, 12, 1, 11, 6, 30, 307120, tzinfo=UTC)
    raw = {"timestamp": "2026-12-01T11:06:30.30712+00:00", "id": "0193-x"}
    assert Cursor.from_json(raw) == Cursor(moment.isoformat(), "0193-x")
    whole = {"timestamp": "2026-12-01T11:06:30+00:00", "id": "0193-y"}
    assert Cursor.from_json(whole) == Cursor(moment.replace(microsecond=0).isoformat(), "0193-y")
