"""``func_job_events_after``: the event stream's read, against a real PostgreSQL.

The case that matters: transactions commit out of event-id order. A reader that paged
by id alone would move past the later id and lose the earlier one for good."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from orchestrator.errors import InputRefused
from orchestrator.jobs import calls
from tests.integration.jobkit import Hub


def _after(hub: Hub, after: int | None, **filters: Any) -> dict[str, Any]:
    return hub.run(calls.job_events_after(after, **filters))


def settle(hub: Hub, timeout: float = 60) -> None:
    """Waits until every event written is final for the stream: the horizon is
    cluster-wide, and the test database server creates the next test's database
    meanwhile (CREATE DATABASE holds a transaction id while it copies)."""
    deadline = time.monotonic() + timeout
    query = (
        "SELECT coalesce(max(tx), '0'::xid8) < pg_snapshot_xmin(pg_current_snapshot()) "
        "FROM public.job_events"
    )
    while not hub.one(query):
        assert time.monotonic() < deadline, "a transaction held the horizon back too long"
        time.sleep(0.05)


def _drain(hub: Hub, after: int, **filters: Any) -> tuple[list[dict[str, Any]], int]:
    seen: list[dict[str, Any]] = []
    while True:
        page = _after(hub, after, **filters)
        seen += page["events"]
        after = page["position"]
        if not page["more"]:
            return seen, after


@pytest.fixture
def hub(db_url: str) -> Any:
    h = Hub(db_url)
    h.user("alice", "org-a")
    h.user("bob", "org-b")
    yield h
    h.executor.close()


def test_no_position_is_the_present_and_zero_is_the_beginning(hub: Hub) -> None:
    empty = _after(hub, None)
    assert empty == {"events": [], "position": 0, "more": False}
    first = hub.submit("alice")
    settle(hub)
    now = _after(hub, None)
    assert now["events"] == [] and now["position"] > 0
    events, _ = _drain(hub, 0)
    assert [(e["job_id"], e["event_type"], e["user_id"]) for e in events] == [
        (first.job_id, "submitted", "alice")
    ]
    assert _after(hub, now["position"])["events"] == []


def test_an_earlier_id_committed_later_is_not_skipped(hub: Hub, db_url: str) -> None:
    """Transaction A takes an event id, B takes a later one and commits first: the
    stream holds B back until A commits, then gives A's event then B's, once each."""
    start = _after(hub, None)["position"]
    job = hub.submit("alice")
    settle(hub)
    seen, position = _drain(hub, start)
    assert [e["event_type"] for e in seen] == ["submitted"]
    with psycopg.connect(db_url) as a, psycopg.connect(db_url, autocommit=True) as b:
        a.execute(
            "INSERT INTO public.job_events (job_id, event_type, details) "
            "VALUES (%s, 'test_a', '{}')",
            [job.job_id],
        )
        b.execute(
            "INSERT INTO public.job_events (job_id, event_type, details) "
            "VALUES (%s, 'test_b', '{}')",
            [job.job_id],
        )
        ids = dict(
            b.execute(
                "SELECT event_type, event_id FROM public.job_events WHERE event_type LIKE 'test_%'"
            ).fetchall()
        )
        assert ids == {"test_b": ids["test_b"]}  # A's row is not visible yet
        held, position2 = _drain(hub, position)
        assert held == [] and position2 == position  # B waits behind the running A
        a.commit()
    settle(hub)
    later, _ = _drain(hub, position)
    assert [e["event_type"] for e in later] == ["test_a", "test_b"]
    a_id = next(e["event_id"] for e in later if e["event_type"] == "test_a")
    assert a_id < ids["test_b"]
    # resuming after A gives B only; after B, nothing
    assert [e["event_type"] for e in _drain(hub, a_id)[0]] == ["test_b"]
    assert _drain(hub, ids["test_b"])[0] == []


def test_filters_and_pages(hub: Hub) -> None:
    a = hub.submit("alice")
    b = hub.submit("bob")
    hub.run(calls.cancel_job(a.job_id, "ops"))
    settle(hub)
    everything, _ = _drain(hub, 0)
    assert [(e["job_id"], e["event_type"]) for e in everything] == [
        (a.job_id, "submitted"),
        (b.job_id, "submitted"),
        (a.job_id, "cancelled"),
    ]
    assert [e["job_id"] for e in _drain(hub, 0, user_ids=["bob"])[0]] == [b.job_id]
    assert [e["event_type"] for e in _drain(hub, 0, job_ids=[a.job_id])[0]] == [
        "submitted",
        "cancelled",
    ]
    assert [e["job_id"] for e in _drain(hub, 0, event_types=["cancelled"])[0]] == [a.job_id]
    # one row per page: the same three, in the same order
    paged: list[int] = []
    after = 0
    while True:
        page = _after(hub, after, row_limit=1)
        paged += [e["event_id"] for e in page["events"]]
        after = page["position"]
        if not page["more"]:
            break
    assert paged == [e["event_id"] for e in everything]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"row_limit": 0}, "row_limit must be between 1 and 1000"),
        ({"job_ids": ["nope"]}, "job_ids must hold job ids"),
        ({"user_ids": ["x" * 256]}, "user_ids must be an array of at most 100 strings"),
        ({"event_types": [str(i) for i in range(101)]}, "event_types must be an array"),
    ],
)
def test_bad_filters_are_one_line(hub: Hub, filters: dict[str, Any], message: str) -> None:
    with pytest.raises(InputRefused) as caught:
        _after(hub, 0, **filters)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_position_continues_with_greater_ids(hub: Hub) -> None:
    a = hub.submit("alice")
    hub.submit("bob")
    settle(hub)
    events, _ = _drain(hub, 0)
    gone = events[0]["event_id"]
    hub.sql("DELETE FROM public.jobs WHERE job_id = %s", [a.job_id])
    assert [e["event_id"] for e in _drain(hub, gone)[0]] == [events[1]["event_id"]]
    with pytest.raises(InputRefused, match="after_event_id must be"):
        _after(hub, -1)
