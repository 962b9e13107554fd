"""The seed's GPU workers, unchanged, against the hub through the PostgREST stand-in: their
heartbeat with logs under the seed's argument names and statuses, the heartbeat without
logs, a crash that releases the worker's jobs as the reaper would, and no call shape
that PostgREST could not resolve to exactly one overload."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from orchestrator.jobs import calls
from orchestrator.logs.calls import heartbeat_call
from tests.integration.jobkit import hub
from tests.integration.logrows import rows
from tests.integration.seed_clients import WORKER, fake, post, seed, seed_beat, seed_log

__all__ = ["fake", "seed"]  # the fixtures, shared with the readers' tests


def test_a_seed_heartbeat_stores_the_worker_and_its_logs(fake, seed, conn):
    """The seed worker's beat: its row (seed statuses, VRAM, the seed's column names) and
    its logs, keyed `level`, attributed to the worker and the task each names."""
    task = str(uuid.uuid4())
    body = seed_beat(
        logs=[
            seed_log("Loading model"),
            seed_log("VRAM high", "WARNING", task_id=task, metadata={"gpu": 0}),
        ]
    )
    reply: Any = seed.rpc("func_worker_heartbeat_with_logs", body).execute().data
    sent = fake.requests[-1]
    assert (sent.path, sent.body) == ("/rest/v1/rpc/func_worker_heartbeat_with_logs", body)
    assert reply["success"] is True
    assert reply["logs"] == {
        "success": True,
        "inserted": 2,
        "duplicates": 0,
        "rejected": [],
        "errors": 0,
    }
    assert conn.execute(
        "SELECT status, vram_total_mb, vram_used_mb, id, last_heartbeat = last_heartbeat_at "
        "FROM workers WHERE worker_id = %s",
        [WORKER],
    ).fetchone() == ("idle", 81920, 40960, WORKER, True)
    stored = [
        (r["source_type"], r["source_id"], r["worker_id"], r["log_level"], r["task_id"])
        for r in rows(conn)
    ]
    assert stored == [
        ("worker", WORKER, WORKER, "INFO", None),
        ("worker", WORKER, WORKER, "WARNING", uuid.UUID(task)),
    ]


@pytest.mark.parametrize(
    ("status", "stored"),
    [("active", "idle"), ("inactive", "stopped"), ("terminated", "stopped"), ("crashed", "dead")],
)
def test_the_seeds_statuses_are_stored_in_the_hubs_words(fake, status, stored, conn):
    """Each of the seed's four statuses is accepted, and stored as the hub's."""
    response = post(fake, "func_worker_heartbeat_with_logs", seed_beat(status=status))
    assert response.status_code == 200, response.text
    assert response.json()["worker"]["status"] == stored
    assert conn.execute("SELECT status FROM workers").fetchone() == (stored,)


def test_an_unknown_status_is_refused_naming_the_accepted_ones(fake, conn):
    """A status neither side knows: 400 with the hub's one-line message, nothing written."""
    response = post(fake, "func_worker_heartbeat_with_logs", seed_beat(status="sleeping"))
    assert (response.status_code, response.json()["code"]) == (400, "22023")
    assert "accepted: starting, idle, busy, draining, stopped, dead" in response.json()["message"]
    assert "active, inactive, terminated, crashed" in response.json()["message"]
    assert conn.execute("SELECT count(*) FROM workers").fetchone() == (0,)


def test_the_seeds_heartbeat_without_logs(fake, seed, conn):
    """func_update_worker_heartbeat(worker_id_param, ...) beats and updates the VRAM."""
    for used in (1024, 2048):
        args = {"worker_id_param": WORKER, "vram_total_mb_param": 24576, "vram_used_mb_param": used}
        reply: Any = seed.rpc("func_update_worker_heartbeat", args).execute().data
        assert reply["success"] is True and reply["logs"]["inserted"] == 0
    assert conn.execute(
        "SELECT status, vram_total_mb, vram_used_mb, heartbeat_count FROM workers"
    ).fetchone() == ("idle", 24576, 2048, 2)


def test_a_crashed_beat_releases_the_workers_jobs_as_the_reaper_would(db_url, fake):
    """gpu-crash reports `crashed`; gpu-stale goes silent and the reaper declares it dead.
    Their jobs end alike (requeued, or failed on the last attempt; one worker_dead event
    each; slots freed; the old lease refused), and the crash touches no other worker's."""
    with hub(db_url) as h:
        h.user("alice", "org-1")
        h.set_limit("organization", "org-1", 10)
        held: dict[str, list[Any]] = {}
        for worker in ("gpu-crash", "gpu-stale", "gpu-bystander"):
            assert (
                post(fake, "func_worker_heartbeat_with_logs", seed_beat(worker)).status_code == 200
            )
            held[worker] = []
            for attempts in (3, 1):
                h.submit("alice", max_attempts=attempts)
                held[worker].append(h.claim_one(worker, lease_seconds=600))
        h.sql(
            "UPDATE job_queue SET lease_expires_at = now() - interval '1 second' "
            "WHERE worker_id = 'gpu-bystander'"
        )
        crash = post(fake, "func_worker_heartbeat_with_logs", seed_beat("gpu-crash", "crashed"))
        assert crash.json()["released_jobs"] == {
            "requeued": 1,
            "failed": 1,
            "job_ids": sorted(str(j.job_id) for j in held["gpu-crash"]),
        }
        assert all(h.status(j.job_id) == ("running", "running") for j in held["gpu-bystander"])
        h.sql("UPDATE workers SET last_heartbeat_at = now() - interval '1 minute' "
              "WHERE worker_id = 'gpu-stale'")  # fmt: skip
        reaped = h.run(calls.reap_dead_workers(30))
        assert reaped.dead_worker_ids == ("gpu-stale",)

        def outcome(job: Any) -> tuple[Any, ...]:
            accepted = h.run(calls.complete_job(job.job_id, job.lease_token)).accepted
            return (*h.status(job.job_id), h.events(job.job_id)[-1], accepted)

        crashed = [outcome(job) for job in held["gpu-crash"]]
        assert crashed == [outcome(job) for job in held["gpu-stale"]]
        assert crashed == [
            ("queued", "queued", ("worker_dead", "running", "queued"), False),
            ("failed", "failed", ("worker_dead", "running", "failed"), False),
        ]
        assert h.counters() == {("organization", "org-1"): 0}  # every slot given back
        assert h.one("SELECT status FROM workers WHERE worker_id = 'gpu-crash'") == "dead"


def test_a_hub_beat_that_says_dead_releases_the_jobs_too(db_url):
    """The hub's own names: status `dead` takes the same path as the seed's `crashed`."""
    with hub(db_url) as h:
        h.user("alice", "org-1")
        h.run(heartbeat_call("gpu-hub", "busy"))
        h.submit("alice")
        job = h.claim_one("gpu-hub", lease_seconds=600)
        assert h.run(heartbeat_call("gpu-hub", "dead")).status == "dead"
        assert h.status(job.job_id) == ("queued", "queued")
        assert h.events(job.job_id)[-1] == ("worker_dead", "running", "queued")


SEED_ARGS = {
    "worker_id_param": "gpu-shape",
    "vram_total_mb_param": 1,
    "vram_used_mb_param": 1,
    "logs_param": [],
    "status_param": "active",
}
HUB_ARGS = {
    "worker_id": "gpu-shape",
    "status": "idle",
    "current_task_id": None,
    "metadata": {},
    "logs": [],
}


def _shapes(args: dict[str, Any], required: str) -> list[dict[str, Any]]:
    """Every call with ``required`` and any subset of the other arguments."""
    optional = [name for name in args if name != required]
    return [
        {required: args[required], **{name: args[name] for name in chosen}}
        for size in range(len(optional) + 1)
        for chosen in itertools.combinations(optional, size)
    ]


def test_every_call_shape_resolves_to_exactly_one_heartbeat(fake):
    """PostgREST picks an overload by the set of argument names: each subset of either
    side's names (with its worker id) reaches one overload, a mix or no worker id none,
    and no shape is ambiguous (PGRST203)."""
    for body in _shapes(SEED_ARGS, "worker_id_param") + _shapes(HUB_ARGS, "worker_id"):
        response = post(fake, "func_worker_heartbeat_with_logs", body)
        assert response.status_code == 200, (body, response.text)
        assert response.json()["worker"]["worker_id"] == "gpu-shape"
    for body in (
        {},
        {"worker_id": "gpu-shape", "logs_param": []},
        {"worker_id_param": "gpu-shape", "logs": []},
        {"worker_id": "gpu-shape", "worker_id_param": "gpu-shape"},
        {"status_param": "active"},
    ):
        response = post(fake, "func_worker_heartbeat_with_logs", body)
        assert (response.status_code, response.json()["code"]) == (404, "PGRST202"), body
    without_logs = {k: v for k, v in SEED_ARGS.items() if k != "logs_param"}
    for body in _shapes(without_logs, "worker_id_param"):
        response = post(fake, "func_update_worker_heartbeat", body)
        assert response.status_code == 200, (body, response.text)


def test_the_stand_in_refuses_an_ambiguous_call_as_postgrest_does(fake, conn):
    """The check above can fail: two overloads that both fit {a} make the stand-in answer
    300 PGRST203, as PostgREST does, while {a, b} and {a, c} each fit one."""
    for extra in ("b text", "c integer"):
        conn.execute(
            f"CREATE FUNCTION public.func_probe(a text, {extra} DEFAULT NULL) RETURNS jsonb "
            "LANGUAGE sql AS $$ SELECT '{}'::jsonb $$"
        )
    ambiguous = post(fake, "func_probe", {"a": "x"})
    assert (ambiguous.status_code, ambiguous.json()["code"]) == (300, "PGRST203")
    assert "Could not choose the best candidate function" in ambiguous.json()["message"]
    assert post(fake, "func_probe", {"a": "x", "b": "y"}).status_code == 200
    assert post(fake, "func_probe", {"a": "x", "c": 1}).status_code == 200


def test_sql_callers_by_position_reach_the_overload_their_values_fit(conn):
    """In the SQL editor: a lone worker id (or with a status text) is the hub's
    heartbeat, not an ambiguity; the seed's five values by position are the seed's."""
    hub_shape = conn.execute("SELECT func_worker_heartbeat_with_logs('gpu-sql')").fetchone()[0]
    assert hub_shape["worker"]["status"] == "idle"
    busy = conn.execute("SELECT func_worker_heartbeat_with_logs('gpu-sql', 'busy')").fetchone()[0]
    assert busy["worker"]["status"] == "busy"
    seed_shape = conn.execute(
        "SELECT func_worker_heartbeat_with_logs('gpu-sql', 81920, 100, '[]', 'terminated')"
    ).fetchone()[0]
    assert seed_shape["worker"]["status"] == "stopped"
    assert conn.execute("SELECT vram_total_mb FROM workers").fetchone() == (81920,)
