"""The PostgREST stand-in's table reads themselves: the operators, ordering, paging,
headers and refusals it promises (tests/support/postgrest_reads.py), on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from tests.integration.logrows import entry, insert
from tests.integration.seed_clients import fake, get

__all__ = ["fake"]
NOW = datetime.now(UTC).replace(microsecond=0)


def _messages(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["message"] for row in response.json()]


def _seed(conn) -> None:
    insert(
        conn,
        [
            entry(timestamp=(NOW - timedelta(minutes=i)).isoformat(), message=f"m{i}",
                  log_level=("INFO", "WARNING", "ERROR")[i % 3], cycle_number=i if i % 2 else None)
            for i in range(6)
        ],
    )  # fmt: skip


def test_in_is_neq_lt_and_not(fake, conn):
    """in.(...), is.null, neq, lt and not. select the rows PostgREST would."""
    _seed(conn)
    base = "system_logs?select=message&order=timestamp.desc"
    assert _messages(get(fake, f"{base}&log_level=in.(ERROR,WARNING)")) == ["m1", "m2", "m4", "m5"]
    assert _messages(get(fake, f"{base}&cycle_number=is.null")) == ["m0", "m2", "m4"]
    assert _messages(get(fake, f"{base}&cycle_number=not.is.null")) == ["m1", "m3", "m5"]
    assert _messages(get(fake, f"{base}&log_level=neq.INFO&cycle_number=lt.3")) == ["m1"]
    assert _messages(get(fake, f"{base}&message=like.m*&log_level=not.eq.ERROR")) == [
        "m0", "m1", "m3", "m4"]  # fmt: skip
    assert _messages(get(fake, f"{base}&log_level=in.()")) == []


def test_order_nulls_offset_and_content_range(fake, conn):
    """order with nulls placement, limit and offset, and Content-Range as PostgREST says it."""
    _seed(conn)
    response = get(fake, "system_logs?select=message&order=cycle_number.desc.nullslast,"
                   "timestamp.asc&limit=2&offset=1")  # fmt: skip
    assert _messages(response) == ["m3", "m1"]
    assert response.headers["content-range"] == "1-2/*"
    empty = get(fake, "system_logs?select=message&message=eq.none")
    assert (empty.json(), empty.headers["content-range"]) == ([], "*/*")


def test_a_plus_sign_in_the_query_string_is_kept(fake, conn):
    """PostgREST does not read `+` as a space: an unescaped +00:00 offset still works."""
    _seed(conn)
    since = (NOW - timedelta(minutes=1, seconds=30)).isoformat()  # ends in +00:00
    raw = get(fake, f"system_logs?select=message&timestamp=gte.{since}&order=timestamp.desc")
    escaped = get(fake, f"system_logs?select=message&timestamp=gte.{quote(since)}")
    assert _messages(raw) == ["m0", "m1"] and sorted(_messages(escaped)) == ["m0", "m1"]


def test_refusals_are_postgrests(fake, conn):
    """Unknown relation 404 PGRST205; unknown column 400 42703; a filter or order the
    stand-in cannot parse 400 PGRST100, naming what it reads."""
    missing = get(fake, "no_such_table?select=*")
    assert (missing.status_code, missing.json()["code"]) == (404, "PGRST205")
    column = get(fake, "system_logs?select=nope")
    assert (column.status_code, column.json()["code"]) == (400, "42703")
    for query in ("level=fts.x", "level=eq", "order=timestamp.sideways", "limit=ten"):
        refused = get(fake, f"system_logs?{query}")
        assert (refused.status_code, refused.json()["code"]) == (400, "PGRST100"), query
    assert (
        "eq, neq, gt, gte, lt, lte, like, ilike, is, in"
        in get(fake, "system_logs?level=fts.x").json()["message"]
    )
