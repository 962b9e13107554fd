"""The database entry points under input from any client (issue 14): NUL and lone
surrogates, nesting past what readers decode, retries of server-timed entries, cycle
numbers that do not fit. Each case goes through the SQL function as a client other
than ours would call it (raw JSON text over psycopg, raw HTTP to the PostgREST
stand-in), through the heartbeat, and through the handler's sinks where they apply."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.logs.calls import heartbeat_call
from orchestrator.logs.sinks.postgres import PostgresSink
from orchestrator.logs.sinks.rest import RestSink
from orchestrator.query import calls as query_calls
from orchestrator.query.model import LogFilter
from tests.e2e.test_cli import orchestrator
from tests.integration.logrows import handler_entry, rows
from tests.support.fake_postgrest import FakePostgrest

KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"

# JSON text as another client writes it: escapes jsonb cannot hold, and look-alikes.
HOSTILE_BODY = (
    '[{"message": "nul \\u0000 inside", "log_level": "INFO", "source_type": "js", "source_id": "a",'
    ' "metadata": {"k\\u0000": "v\\u0000"}},'
    ' {"message": "lone high \\ud800 here", "log_level": "INFO", "source_type": "js", "source_id": "a"},'
    ' {"message": "lone low \\udc00 here", "log_level": "INFO", "source_type": "js", "source_id": "a"},'
    ' {"message": "pair \\ud83d\\ude00 kept", "log_level": "INFO", "source_type": "js", "source_id": "a"},'
    ' {"message": "escaped \\\\u0000 is text", "log_level": "INFO", "source_type": "js", "source_id": "a"},'
    ' {"message": "good", "log_level": "INFO", "source_type": "js", "source_id": "a"}]'
)
EXPECTED = [
    "nul \ufffd inside",
    "lone high \ufffd here",
    "lone low \ufffd here",
    "pair \U0001f600 kept",
    "escaped \\u0000 is text",
    "good",
]


def _rpc(url: str, function: str, body: str) -> Any:
    """A raw PostgREST call: the body exactly as a JS or curl client sends it."""
    response = httpx.post(
        f"{url}/rest/v1/rpc/{function}",
        content=body.encode(),
        headers={
            "apikey": KEY,
            "Authorization": f"Bearer {KEY}",
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _messages(conn: psycopg.Connection[Any]) -> list[str]:
    return sorted(r["message"] for r in rows(conn))


@pytest.mark.parametrize("transport", ["sql", "rest"])
def test_nul_and_lone_surrogates_from_any_client_cost_only_that_character(conn, db_url, transport):
    """Every entry is stored; each NUL or lone surrogate escape is U+FFFD, valid pairs and
    an escaped backslash are left alone."""
    if transport == "sql":
        (result,) = conn.execute("SELECT func_insert_logs_batch(%s)", [HOSTILE_BODY]).fetchone()
    else:
        with FakePostgrest(db_url, KEY) as fake:
            result = _rpc(fake.url, "func_insert_logs_batch", f'{{"logs": {HOSTILE_BODY}}}')
    assert (result["inserted"], result["rejected"]) == (6, [])
    assert _messages(conn) == sorted(EXPECTED)
    [nul] = [r for r in rows(conn) if r["message"].startswith("nul")]
    assert nul["metadata"] == {"k\ufffd": "v\ufffd"}


@pytest.mark.parametrize("transport", ["sql", "rest"])
def test_a_heartbeat_never_fails_because_of_its_logs(conn, db_url, transport):
    """The same hostile logs on a heartbeat: the workers row is written and the logs too."""
    if transport == "sql":
        (result,) = conn.execute(
            "SELECT func_worker_heartbeat_with_logs('gpu-h', 'busy', logs => %s)", [HOSTILE_BODY]
        ).fetchone()
    else:
        with FakePostgrest(db_url, KEY) as fake:
            body = f'{{"worker_id": "gpu-h", "status": "busy", "logs": {HOSTILE_BODY}}}'
            result = _rpc(fake.url, "func_worker_heartbeat_with_logs", body)
    assert result["worker"]["heartbeat_count"] == 1
    assert result["logs"]["inserted"] == 6
    assert _messages(conn) == sorted(EXPECTED)


def _nested(depth: int) -> str:
    """JSON text of objects nested ``depth`` deep (Python's encoder stops near 1,000)."""
    return '{"d": ' * depth + '"bottom"' + "}" * depth


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, dict):
        value, depth = value["d"], depth + 1
    return depth


def test_metadata_nested_1500_deep_is_cut_at_100_with_a_note(conn):
    """Deeper than 100 levels is stored as text below the cut, and the cut is noted."""
    body = (
        '[{"message": "deep", "log_level": "INFO", "source_type": "s", "source_id": "x",'
        f' "metadata": {_nested(1500)}}}]'
    )
    (result,) = conn.execute("SELECT func_insert_logs_batch(%s)", [body]).fetchone()
    assert result["inserted"] == 1
    (metadata,) = conn.execute("SELECT metadata::text FROM system_logs").fetchone()
    stored = json.loads(metadata)  # decodable: nothing deeper than ~100 levels
    assert stored["_ingest"] == {"metadata_nested_deeper_than": 100}
    assert _depth(stored) == 100


def test_readers_survive_a_row_nested_deeper_than_decoders_go(db_url, conn, tmp_path):
    """A row written by hand, past the ingest rules, 1,500 deep: the query functions, the
    CLI's text and JSON formats and --export read it (the deep part as text)."""
    conn.execute(
        "INSERT INTO system_logs (id, timestamp, source_type, source_id, log_level,"
        " severity_number, message, metadata) VALUES (%s, now(), 's', 'x', 'INFO', 9,"
        " 'by hand', %s::jsonb)",
        [str(uuid.uuid4()), _nested(1500)],
    )
    page = PsycopgExecutor(conn).run(query_calls.query_logs(LogFilter(), limit=10))
    assert _depth(page.rows[0].metadata) == 100
    for args in (["logs"], ["logs", "--format", "json"], ["logs", "--format", "jsonl"],
                 ["logs", "--export", str(tmp_path / "out.jsonl"), "--format", "jsonl"]):  # fmt: skip
        result = orchestrator(*args, cwd=tmp_path, DATABASE_URL=db_url, timeout=60)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stderr)
    assert "by hand" in (tmp_path / "out.jsonl").read_text()


@pytest.mark.parametrize("when", ["missing", "two hours ahead", "40 days old"])
@pytest.mark.parametrize("path", ["batch", "rest", "heartbeat", "staged", "sink"])
def test_a_retried_server_timed_entry_is_stored_once(conn, db_url, when, path):
    """The key includes the time, and a missing or clamped time is the arrival time: the
    id alone now makes a retry a duplicate, on every path."""
    stamp = {"missing": None, "two hours ahead": time.time() + 7200,
             "40 days old": time.time() - 40 * 86400}[when]  # fmt: skip
    entry = handler_entry(timestamp=stamp)
    if stamp is None:
        del entry["timestamp"]
    results = [_send(path, conn, db_url, entry) for _ in range(2)]
    assert [(r["inserted"], r["duplicates"]) for r in results] == [(1, 0), (0, 1)]
    assert len(rows(conn)) == 1


@pytest.mark.parametrize("path", ["batch", "rest", "heartbeat", "staged", "sink"])
def test_a_cycle_beyond_int32_is_null_with_the_original_kept(conn, db_url, path):
    """2**32 + 42 was stored as 42 by the staged path and NULL without a note elsewhere."""
    _send(path, conn, db_url, handler_entry(cycle_number=2**32 + 42))
    [row] = rows(conn)
    assert row["cycle_number"] is None
    assert row["metadata"]["_ingest"] == {"invalid_cycle_number": str(2**32 + 42)}


def _send(path: str, conn: psycopg.Connection[Any], db_url: str, entry: dict[str, Any]) -> Any:
    """Sends one entry by ``path``; the {inserted, duplicates} the database answered."""
    if path == "batch":
        (result,) = conn.execute(
            "SELECT func_insert_logs_batch(%s)", [json.dumps([entry])]
        ).fetchone()
        return result
    if path == "heartbeat":
        return _beat(conn, entry)
    if path in ("staged", "sink"):
        sink = PostgresSink(db_url)
        try:
            sent = sink.send_staged([entry]) if path == "staged" else sink.send([entry])
        finally:
            sink.close()
        return {"inserted": sent.inserted, "duplicates": sent.duplicates}
    with FakePostgrest(db_url, KEY) as fake:
        sent = RestSink(fake.url, KEY).send([entry])
    return {"inserted": sent.inserted, "duplicates": sent.duplicates}


def _beat(conn: psycopg.Connection[Any], entry: dict[str, Any]) -> dict[str, int]:
    logs = PsycopgExecutor(conn).run(heartbeat_call("gpu-r", logs=[entry])).logs
    return {"inserted": logs.inserted, "duplicates": logs.duplicates}


@pytest.mark.parametrize("function", ["func_insert_logs_batch", "func_worker_heartbeat_with_logs"])
def test_metadata_as_deep_as_the_server_parses_is_stored_beside_its_batch(conn, function):
    """10,000 levels (PostgreSQL's parser stops near 14,000 here, before any function
    runs): the entry is stored, cut at 100 levels, and its neighbour too."""
    body = (
        '[{"message": "deep", "log_level": "INFO", "source_type": "s", "source_id": "x",'
        f' "metadata": {_nested(10_000)}}},'
        ' {"message": "neighbour", "log_level": "INFO", "source_type": "s", "source_id": "x"}]'
    )
    if function == "func_insert_logs_batch":
        (result,) = conn.execute("SELECT func_insert_logs_batch(%s)", [body]).fetchone()
    else:
        (beat,) = conn.execute(
            "SELECT func_worker_heartbeat_with_logs('gpu-d', logs => %s)", [body]
        ).fetchone()
        result = beat["logs"]
    assert result["inserted"] == 2
    assert sorted(r["message"] for r in rows(conn)) == ["deep", "neighbour"]
