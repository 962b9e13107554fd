"""RestSink (supabase-py ``rpc``) against a PostgREST stand-in backed by the real database.

The stand-in (tests/support/fake_postgrest.py) is a real HTTP server speaking PostgREST's
RPC protocol; every successful call runs ``func_insert_logs_batch`` on this test's own
migrated database, so what the sink reports is checked against the rows really stored.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client

from orchestrator.errors import CallRefused, DatabaseUnavailable, InputRefused
from orchestrator.logs.calls import cleanup_old_logs
from orchestrator.logs.sinks.rest import RestSink
from tests.integration.logrows import entry, rows
from tests.support.fake_postgrest import FakePostgrest, status_for_sqlstate

# JWT-shaped, like a Supabase service_role key (supabase-py does not check its format).
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
RPC_PATH = "/rest/v1/rpc/func_insert_logs_batch"


@pytest.fixture
def fake(db_url: str) -> Iterator[FakePostgrest]:
    """A running PostgREST stand-in over this test's database."""
    with FakePostgrest(db_url, KEY) as server:
        yield server


@pytest.fixture
def sink(fake: FakePostgrest) -> Iterator[RestSink]:
    """A RestSink pointed at the stand-in with the right key."""
    rest = RestSink(fake.url, KEY, timeout=5)
    yield rest
    rest.close()


@pytest.fixture
def client(fake: FakePostgrest) -> Iterator[Client]:
    """A plain supabase-py client of the stand-in, on an httpx client of our own as in
    RestSink (which also keeps supabase-py's deprecated-timeout warnings away)."""
    with httpx.Client(timeout=5) as http:
        yield create_client(fake.url, KEY, options=ClientOptions(httpx_client=http))


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_batch_lands_in_system_logs(sink: RestSink, conn: psycopg.Connection[Any]) -> None:
    """A batch sent over REST is stored row for row and counted as inserted."""
    batch = [entry(message=f"m{i}", log_level="warn") for i in range(3)]
    result = sink.send(batch)
    assert (result.success, result.inserted, result.duplicates, result.rejected) == (
        True,
        3,
        0,
        (),
    )
    stored = rows(conn)
    assert sorted(str(r["id"]) for r in stored) == sorted(e["id"] for e in batch)
    assert {r["message"] for r in stored} == {"m0", "m1", "m2"}
    assert {r["log_level"] for r in stored} == {"WARNING"}


def test_retried_batch_counts_duplicates(sink: RestSink, conn: psycopg.Connection[Any]) -> None:
    """Sending the identical batch again reports duplicates and stores nothing twice."""
    batch = [entry() for _ in range(4)]
    assert sink.send(batch).inserted == 4
    again = sink.send(batch)
    assert (again.success, again.inserted, again.duplicates) == (True, 0, 4)
    assert len(rows(conn)) == 4


def test_bad_entry_rejected_with_index(sink: RestSink, conn: psycopg.Connection[Any]) -> None:
    """A bad entry comes back in ``rejected`` with its index; the others are inserted."""
    batch = [entry(message="a"), entry(log_level="LOUD"), entry(message="c")]
    result = sink.send(batch)
    assert (result.success, result.inserted, result.duplicates) == (True, 2, 0)
    [rejected] = result.rejected
    assert rejected.index == 1
    assert "unknown level" in rejected.reason
    assert {r["message"] for r in rows(conn)} == {"a", "c"}


def test_429_carries_retry_after(
    fake: FakePostgrest, sink: RestSink, conn: psycopg.Connection[Any]
) -> None:
    """HTTP 429 with Retry-After: 2 is transient with retry_after 2.0; the next send works."""
    fake.fail_next(429, retry_after="2")
    batch = [entry()]
    with pytest.raises(DatabaseUnavailable) as caught:
        sink.send(batch)
    assert caught.value.retry_after == 2.0
    assert "429" in str(caught.value)
    assert rows(conn) == []
    assert sink.send(batch).inserted == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, None),
        (500, "<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"),
        (502, "<html>Bad Gateway</html>"),
    ],
    ids=["503-json", "500-html", "502-html"],
)
def test_server_errors_are_transient(
    fake: FakePostgrest,
    sink: RestSink,
    conn: psycopg.Connection[Any],
    status: int,
    body: str | None,
) -> None:
    """5xx (PostgREST JSON or a proxy's HTML) is transient; the send after them succeeds."""
    fake.fail_next(status, times=2, body=body)
    batch = [entry(), entry()]
    for _ in range(2):
        with pytest.raises(DatabaseUnavailable, match=str(status)) as caught:
            sink.send(batch)
        assert caught.value.retry_after is None
    assert rows(conn) == []
    assert sink.send(batch).inserted == 2
    assert len(rows(conn)) == 2


def test_class_22_error_is_a_data_error(fake: FakePostgrest, sink: RestSink) -> None:
    """A PostgREST 400 whose code is a class-22 SQLSTATE raises InputRefused (split it)."""
    fake.fail_next(
        400,
        body={"code": "22P02", "message": "invalid input syntax", "details": None, "hint": None},
    )
    with pytest.raises(InputRefused, match="400"):
        sink.send([entry()])


def test_database_class_22_error_reaches_the_sink_as_data_error(sink: RestSink) -> None:
    """A real SQLSTATE 22023 comes back as PostgREST's 400 and becomes InputRefused."""
    # func_insert_logs_batch never raises one, so another hub function goes through the
    # sink's own RPC path.
    with pytest.raises(InputRefused, match="retention_hours must be at least 1"):
        sink.executor.run(cleanup_old_logs(0))


def test_wrong_key_is_refused_and_nothing_inserted(
    fake: FakePostgrest, conn: psycopg.Connection[Any]
) -> None:
    """A wrong key gets 401, the sink raises CallRefused, nothing is inserted."""
    # Not InputRefused: the handler keeps the records in memory and retries instead of
    # dropping them; a 401 is never taken for a bad batch (it is not split or rejected).
    wrong = RestSink(fake.url, KEY[:-4] + "AAAA", timeout=5)
    try:
        with pytest.raises(CallRefused, match="401") as caught:
            wrong.send([entry()])
        assert not isinstance(caught.value, InputRefused)
        with pytest.raises(CallRefused):
            wrong.check()
    finally:
        wrong.close()
    assert rows(conn) == []
    assert fake.requests[0].headers["apikey"] != KEY


def test_check_succeeds_against_the_fake(fake: FakePostgrest, sink: RestSink) -> None:
    """check() passes when the REST endpoint and the migrated function answer."""
    sink.check()
    assert fake.requests[-1].body == {"logs": []}


def test_check_fails_once_the_server_stopped(fake: FakePostgrest, sink: RestSink) -> None:
    """check() raises DatabaseUnavailable after the REST server went away."""
    sink.check()
    fake.stop()
    with pytest.raises(DatabaseUnavailable, match="ConnectError"):
        sink.check()


def test_check_fails_on_an_unreachable_port() -> None:
    """check() raises DatabaseUnavailable when nothing listens at the URL."""
    rest = RestSink(f"http://127.0.0.1:{closed_port()}", KEY, timeout=2)
    try:
        with pytest.raises(DatabaseUnavailable):
            rest.check()
        with pytest.raises(DatabaseUnavailable):
            rest.send([entry()])
    finally:
        rest.close()


def test_check_fails_before_migrations(
    fake: FakePostgrest, sink: RestSink, conn: psycopg.Connection[Any]
) -> None:
    """Without func_insert_logs_batch (PostgREST's 404 PGRST202) check() is CallRefused,
    which the handler retries (the migrations may come), naming the fix."""
    conn.execute("DROP FUNCTION public.func_insert_logs_batch(json)")
    with pytest.raises(CallRefused, match=r"404.*run `orchestrator migrate`"):
        sink.check()


def test_request_is_postgrest_rpc(fake: FakePostgrest, sink: RestSink) -> None:
    """The sink speaks PostgREST: POST /rest/v1/rpc/<fn> with apikey, Bearer and {"logs": [...]}."""
    batch = [entry(metadata={"gpu": 0}), entry()]
    sink.send(batch)
    [request] = fake.requests
    assert request.path == RPC_PATH
    assert request.headers["apikey"] == KEY
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["content-profile"] == "public"
    assert request.body == {"logs": batch}


def test_unexpected_200_body_is_transient(fake: FakePostgrest, sink: RestSink) -> None:
    """A 200 that is not the function's JSON (a captive portal or proxy page) is transient."""
    fake.fail_next(200, body="<html><body>Please log in to the hotel Wi-Fi</body></html>")
    with pytest.raises(DatabaseUnavailable):
        sink.send([entry()])


def test_payload_too_large_is_a_data_error(fake: FakePostgrest, sink: RestSink) -> None:
    """A gateway's 413 means this batch is too big: InputRefused so the caller splits it."""
    fake.fail_next(413, body="<html><h1>413 Request Entity Too Large</h1></html>")
    with pytest.raises(InputRefused):
        sink.send([entry()])


# -- the stand-in itself: typed arguments and PostgREST's error shapes -------------------


def test_fake_casts_named_arguments_to_their_sql_types(sink: RestSink, client: Client) -> None:
    """supabase-py's rpc() with timestamptz arguments gets the function's jsonb back."""
    sink.send([entry(log_level="ERROR"), entry()])
    now = datetime.now(UTC)
    stats: Any = (
        client.rpc(
            "func_log_statistics",
            {
                "since": (now - timedelta(hours=1)).isoformat(),
                "until": (now + timedelta(minutes=1)).isoformat(),
            },
        )
        .execute()
        .data
    )
    assert (stats["total"], stats["errors"]) == (2, 1)
    defaults: Any = client.rpc("func_log_statistics", {}).execute().data  # all defaulted
    assert defaults["total"] == 2


def test_fake_answers_errors_like_postgrest(fake: FakePostgrest, client: Client) -> None:
    """Database errors, unknown functions, bad JSON and bad keys get PostgREST's JSON errors."""
    headers = {"apikey": KEY, "Authorization": f"Bearer {KEY}"}
    base = fake.url + "/rest/v1/rpc/"
    raised = httpx.post(
        base + "func_cleanup_old_logs", json={"retention_hours": 0}, headers=headers
    )
    assert raised.status_code == 400
    assert raised.json()["code"] == "22023"
    assert set(raised.json()) == {"code", "message", "details", "hint"}
    assert "48 hours" in raised.json()["hint"]
    unknown: list[tuple[str, dict[str, Any]]] = [
        ("no_such_function", {}),
        ("func_insert_logs_batch", {"rows": []}),  # no overload takes an argument "rows"
    ]
    for path, body in unknown:
        missing = httpx.post(base + path, json=body, headers=headers)
        assert (missing.status_code, missing.json()["code"]) == (404, "PGRST202")
    bad_json = httpx.post(base + "func_insert_logs_batch", content=b"{nope", headers=headers)
    assert (bad_json.status_code, bad_json.json()["code"]) == (400, "PGRST102")
    for wrong in ({}, {"apikey": "nope"}, {"apikey": KEY, "Authorization": "Bearer nope"}):
        refused = httpx.post(base + "func_insert_logs_batch", json={"logs": []}, headers=wrong)
        assert (refused.status_code, refused.json()["code"]) == (401, "PGRST301")
    with pytest.raises(APIError) as caught:
        client.rpc("func_cleanup_old_logs", {"retention_hours": 0}).execute()
    assert caught.value.code == "22023"


def test_fake_maps_sqlstates_like_postgrest() -> None:
    """The SQLSTATE → HTTP status table follows PostgREST's documented mapping."""
    expected = {
        "22P02": 400,
        "23502": 400,
        "23505": 409,
        "23503": 409,
        "42501": 403,
        "42883": 404,
        "40001": 500,
        "40P01": 500,
        "57P01": 500,
        "08006": 503,
        "53300": 503,
        "P0001": 400,
        "XX000": 500,
    }
    assert {code: status_for_sqlstate(code) for code in expected} == expected
