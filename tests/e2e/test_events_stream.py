"""``GET /api/events/stream`` read by a real HTTP client from a real ``orchestrator
serve``: events as jobs change, filters, heartbeats, approval expiry, a resume across a
server restart with ``Last-Event-ID`` (every event exactly once, in order), and a
client that hangs up freeing its stream on the server."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
from tests.e2e.test_serve import one_line_detail
from tests.support.hubserver import TOKEN, HubServer
from tests.support.pgbouncer import PgBouncer
from tests.support.sse import SseStream

FAST = {"ORCHESTRATOR_EVENTS_POLL_INTERVAL": "0.1", "ORCHESTRATOR_EVENTS_HEARTBEAT": "0.3"}
JOB = {"user_id": "alice", "job_type": "render", "payload": {"command": "echo hi"}}


@pytest.fixture
def users(db_url):
    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.upsert_hub_user("alice", "acme"))
        executor.run(job_calls.upsert_hub_user("bob", "globex"))
        executor.run(
            job_calls.upsert_approval_rule("costly", min_estimated_cost=100, approval_ttl_seconds=1)
        )
    return db_url


def serve(tmp_path, db_url, **env) -> HubServer:
    return HubServer(
        tmp_path, "--no-daemon", DATABASE_URL=db_url, ORCHESTRATOR_API_TOKEN=TOKEN, **FAST, **env
    )


def submit(hub: HubServer, **fields) -> str:
    made = hub.request("POST", "/api/cloud/jobs", token=TOKEN, json={**JOB, **fields})
    assert made.status_code == 201, made.text
    return str(made.json()["job_id"])


def stream(hub: HubServer, **kwargs) -> SseStream:
    return SseStream(hub.url + "/api/events/stream", token=TOKEN, **kwargs)


def db_events(db_url: str) -> list[int]:
    """Every event id in the stream's order."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT event_id FROM job_events ORDER BY tx, event_id").fetchall()
    return [r[0] for r in rows]


def test_events_arrive_as_jobs_change_filtered_with_heartbeats(users, tmp_path):
    db_url = users
    with serve(tmp_path, db_url) as hub:
        everything = stream(hub)
        bobs = stream(hub, params={"user": "bob"})
        kinds = stream(
            hub, params=[("event_type", "cancelled"), ("event_type", "approval_expired")]
        )
        a = submit(hub)
        b = submit(hub, user_id="bob", estimated_cost=500)  # awaits approval for 1 s
        assert hub.request("POST", f"/api/cloud/jobs/{a}/cancel", token=TOKEN).status_code == 200
        first = everything.events(3)
        assert [(d["job_id"], d["event_type"]) for _, d in first] == [
            (a, "submitted"),
            (b, "submitted"),
            (a, "cancelled"),
        ]
        # approval expiry is an event too (the daemon's duty runs func_expire_approvals)
        time.sleep(1.1)  # past the rule's 1 s time to live
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT func_expire_approvals() ->> 'expired'").fetchone() == ("1",)
        ((expired_id, expired),) = everything.events(1)
        assert (expired["job_id"], expired["event_type"]) == (b, "approval_expired")
        assert (expired["from_status"], expired["to_status"]) == ("awaiting_approval", "cancelled")
        assert expired["user_id"] == "bob" and expired["organization_id"] == "globex"
        assert "request_id" in expired["details"]
        assert [(d["job_id"], d["event_type"]) for _, d in bobs.events(2)] == [
            (b, "submitted"),
            (b, "approval_expired"),
        ]
        assert [(d["job_id"], d["event_type"]) for _, d in kinds.events(2)] == [
            (a, "cancelled"),
            (b, "approval_expired"),
        ]
        # ids are the job_events ids, in the stream's order
        assert [i for i, _ in first] + [expired_id] == db_events(db_url)
        # one job from the beginning, then only heartbeats
        with stream(hub, params={"job_id": a, "after": 0}) as one:
            assert [d["event_type"] for _, d in one.events(2)] == ["submitted", "cancelled"]
            one.quiet_until_heartbeat()
            one.quiet_until_heartbeat()
        for s in (everything, bobs, kinds):
            s.quiet_until_heartbeat()
            s.close()
        assert hub.stop() == 0
    assert "Traceback" not in hub.output() and TOKEN not in hub.output()


def test_resume_across_a_server_restart_gets_every_event_exactly_once(users, tmp_path):
    db_url = users
    first = serve(tmp_path, db_url).start()
    with first:
        live = stream(first, params={"after": 0})
        jobs = [submit(first) for _ in range(3)]
        seen = live.events(3)
        # SIGTERM with the stream open: the stream ends at once (no 10 s cut), exit 0
        assert first.stop() == 0
        assert live.next_event() is None and live.ended
        live.close()
    assert "timeout graceful shutdown exceeded" not in first.output()

    # while no server runs: jobs change
    with PsycopgExecutor.connect(db_url) as executor:
        executor.run(job_calls.cancel_job(jobs[0], "ops", "while the hub was down"))
        later = [executor.run(job_calls.submit_job("bob", "train", {"command": "true"})).job_id
                 for _ in range(2)]  # fmt: skip
        executor.run(job_calls.cancel_job(later[1], "ops"))

    with serve(tmp_path, db_url) as second:
        resumed = stream(second, last_event_id=seen[-1][0])
        rest = resumed.events(4)
        resumed.quiet_until_heartbeat()  # and nothing more
        ids = [i for i, _ in seen + rest]
        assert ids == db_events(db_url) and len(set(ids)) == len(ids) == 7
        assert [(d["job_id"], d["event_type"]) for _, d in rest] == [
            (jobs[0], "cancelled"),
            (later[0], "submitted"),
            (later[1], "submitted"),
            (later[1], "cancelled"),
        ]
        # ?after= is the same position; Last-Event-ID wins over it
        with stream(second, params={"after": seen[0][0]}) as again:
            assert [i for i, _ in again.events(6)] == ids[1:]
        with stream(second, params={"after": 0}, last_event_id=ids[-2]) as both:
            assert [i for i, _ in both.events(1)] == ids[-1:]
            both.quiet_until_heartbeat()
        # a client that connected "from now" and saw nothing still resumes without a gap
        quiet = stream(second)
        quiet.quiet_until_heartbeat()
        position = quiet.last_event_id
        assert position == ids[-1]
        quiet.close()
        newer = submit(second)
        with stream(second, last_event_id=position) as back:
            ((_, event),) = back.events(1)
            assert (event["job_id"], event["event_type"]) == (newer, "submitted")
        resumed.close()


def test_hanging_up_frees_the_stream_and_bad_requests_are_one_line(users, tmp_path):
    db_url = users
    with serve(tmp_path, db_url) as hub:
        streams = [stream(hub) for _ in range(3)]
        for s in streams:
            s.quiet_until_heartbeat()
            s.close()
        deadline = time.monotonic() + 30
        while hub.output().count("Event stream closed") < 3:
            assert time.monotonic() < deadline, hub.output()
            time.sleep(0.05)

        url = "/api/events/stream"
        missing = hub.get(url)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert hub.get(url, token="wrong").status_code == 401
        for params, headers, fragment in (
            ({"job_id": "nope"}, {}, "job_id"),
            ({"after": -1}, {}, "after"),
            ({}, {"Last-Event-ID": "12abc"}, "invalid Last-Event-ID '12abc'"),
            ([("user", "u")] * 101, {}, "user"),
            ({"event_type": "x" * 300}, {}, "event_types must be an array"),
        ):
            refused = hub.get(url, token=TOKEN, params=params, headers=headers)
            assert refused.status_code == 422, refused.text
            assert fragment in one_line_detail(refused)
        assert hub.stop() == 0
    assert hub.output().count("Event stream opened") == 3


def test_concurrent_writers_every_event_once_in_order(users, tmp_path):
    """Four connections submit and cancel jobs at once (their transactions commit out of
    event-id order): a stream reading meanwhile gets each event exactly once, in the
    stream's order, with nothing after."""
    db_url = users

    def write(n: int) -> None:
        with PsycopgExecutor.connect(db_url) as executor:
            for _ in range(n):
                job = executor.run(job_calls.submit_job("alice", "render", {"command": "true"}))
                executor.run(job_calls.cancel_job(job.job_id, "ops"))

    with serve(tmp_path, db_url) as hub, stream(hub, params={"after": 0}) as live:
        threads = [threading.Thread(target=write, args=(25,)) for _ in range(4)]
        for t in threads:
            t.start()
        got = live.events(200, timeout=120)
        for t in threads:
            t.join(60)
        live.quiet_until_heartbeat()
        ids = [i for i, _ in got]
        assert ids == db_events(db_url) and len(set(ids)) == 200


def test_two_instances_one_behind_a_transaction_pooler(users, tmp_path):
    """A client reads from one instance and resumes on another that reaches the
    database through PgBouncer in transaction mode (no LISTEN, no session state)."""
    db_url = users
    try:
        bouncer = PgBouncer(db_url, pool_size=1).__enter__()
    except RuntimeError as error:  # missing binary: fail loudly, never skip
        pytest.fail(str(error), pytrace=False)
    try:
        with serve(tmp_path, db_url) as direct, serve(tmp_path, bouncer.url()) as pooled:
            with stream(direct, params={"after": 0}) as first:
                jobs = [submit(direct) for _ in range(2)]
                seen = first.events(2)
            with stream(pooled, last_event_id=seen[-1][0]) as second:
                more = [submit(pooled) for _ in range(2)]
                rest = second.events(2)
                second.quiet_until_heartbeat()
            assert [d["job_id"] for _, d in seen + rest] == jobs + more
            assert [i for i, _ in seen + rest] == db_events(db_url)
    finally:
        bouncer.__exit__(None, None, None)


def test_the_daemons_approval_expiry_reaches_the_stream(users, tmp_path):
    """With the daemon in the same process, an approval request that runs out is expired
    by its duty and the stream says so, nobody calling anything."""
    db_url = users
    config = tmp_path / "daemon.yaml"
    config.write_text("background:\n  approval_expiration: {interval_seconds: 0.2}\n")
    with HubServer(
        tmp_path, "--config", str(config), DATABASE_URL=db_url, ORCHESTRATOR_API_TOKEN=TOKEN, **FAST
    ) as hub:
        with stream(hub) as live:
            costly = submit(hub, user_id="bob", estimated_cost=500)  # 1 s to decide
            events = live.events(2, timeout=60)
        assert [(d["job_id"], d["event_type"]) for _, d in events] == [
            (costly, "submitted"),
            (costly, "approval_expired"),
        ]
        shown = hub.get(f"/api/cloud/jobs/{costly}", token=TOKEN).json()
        assert shown["status"] == "cancelled" and shown["approval"]["status"] == "expired"
        assert all("tx" not in event for event in shown["events"])
        assert hub.stop() == 0


@pytest.mark.slow
def test_a_stream_outlives_a_database_outage_without_a_gap(tmp_path):
    """The database stops under an open stream: the stream stays open (heartbeats), says
    it paused in one log line, and once the database is back delivers what changed,
    each event once."""
    with tempfile.TemporaryDirectory(prefix="hub-stream-outage-") as tmp:
        data_dir = Path(tmp) / "pgdata"
        server = start_embedded(data_dir)
        url = server.url
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.migrate(conn)
        with PsycopgExecutor.connect(url) as executor:
            executor.run(job_calls.upsert_hub_user("alice", "acme"))
        try:
            with serve(tmp_path, url) as hub, stream(hub, params={"after": 0}) as live:
                first = submit(hub)
                assert live.events(1)[0][1]["job_id"] == first
                server.stop()
                live.quiet_until_heartbeat()
                live.quiet_until_heartbeat()  # still open, the database still down
                server = start_embedded(data_dir)
                with PsycopgExecutor.connect(url) as executor:
                    executor.run(job_calls.cancel_job(first, "ops"))
                ((_, cancelled),) = live.events(1, timeout=60)
                assert (cancelled["job_id"], cancelled["event_type"]) == (first, "cancelled")
                live.quiet_until_heartbeat()
                assert hub.output().count("Event stream paused") == 1
                assert "Event stream resumed" in hub.output()
                assert hub.stop() == 0
        finally:
            server.stop()
