"""The daemon's duties on real PostgreSQL, with a real HTTP server as the cloud provider.

Jobs are submitted with the job store's own calls; the daemon dispatches them to the
stand-in (tests/support/fake_provider.py) and polls their status over HTTP.
"""

# ruff: noqa: F811

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter

import psycopg
import pytest

from orchestrator.config import load_settings
from orchestrator.daemon.config import EnterpriseConfig, parse_config
from orchestrator.daemon.tasks import POLLING, QUEUE, REMOTE_CANCELS, BackgroundTaskManager
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as jobs
from tests.integration.test_pgbouncer import bouncer  # noqa: F401
from tests.support.fake_provider import FakeProvider


@pytest.fixture
def remote():
    with FakeProvider() as server:
        yield server


def config(remote: FakeProvider, background: str = "", provider: str = "") -> EnterpriseConfig:
    """A config with the stand-in as provider 'cloud' (no webhook: polling is on)."""
    text = (
        f"background:\n{background or '  queue_processing: {dispatch_batch: 50}'}\n"
        f"providers:\n  cloud: {{base_url: '{remote.url}', max_retries: 1{provider}}}\n"
    )
    return EnterpriseConfig(parse_config(text))


def manager(db_url: str, cfg: EnterpriseConfig, holder: str | None = None) -> BackgroundTaskManager:
    return BackgroundTaskManager(cfg, load_settings(env_file=None), dsn=db_url, holder=holder)


def submit(db_url: str, count: int, provider: str = "cloud", job_type: str = "render") -> list[str]:
    """``count`` jobs of user u1 (org o1) for ``provider``, priorities 1..count."""
    with PsycopgExecutor.connect(db_url) as ex:
        ex.run(jobs.upsert_hub_user("u1", "o1"))
        return [
            ex.run(
                jobs.submit_job("u1", job_type, {"n": i}, provider=provider, priority=1 + i % 1000)
            ).job_id
            for i in range(count)
        ]


def scalar(db_url: str, query: str, *args):
    with psycopg.connect(db_url) as conn:
        return conn.execute(query, args).fetchone()[0]


async def wait_for(predicate, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_polling_syncs_every_active_job_not_the_newest_100(db_url, remote, caplog):
    """250 jobs dispatched in one pass (priority order), then the provider moves 100 to
    running and 100 to succeeded: one polling pass asks about all 250 and records each
    change once; a second pass asks only the 150 still active and records nothing new."""
    job_ids = submit(db_url, 250)
    daemon = manager(db_url, config(remote))

    async def scenario():
        await daemon._open()
        duties = {d.name: d for d in daemon.loop.duties}
        await daemon.loop.run_cycle([duties[QUEUE]])
        remote_ids = sorted(remote.jobs)
        for n, rid in enumerate(remote_ids):
            if n < 100:
                remote.set_status(rid, "processing")
            elif n < 200:
                remote.set_status(rid, "succeeded", output=f"s3://out/{rid}")
        gets_before = len(remote.gets())
        with caplog.at_level(logging.DEBUG, logger="orchestrator.daemon.tasks"):
            first = await daemon.loop.run_cycle([duties[POLLING]])
        asked_first = len(remote.gets()) - gets_before
        second = await daemon.loop.run_cycle([duties[POLLING]])
        asked_second = len(remote.gets()) - gets_before - asked_first
        await daemon.stop()
        return first, second, asked_first, asked_second

    first, second, asked_first, asked_second = asyncio.run(scenario())
    assert first == second == {POLLING: "ran"}
    assert (asked_first, asked_second) == (250, 150)
    posted = [r.body["priority"] for r in remote.requests if r.method == "POST"]
    assert len(posted) == 250 and posted == sorted(posted, reverse=True)
    assert "Synced 250 active jobs" in caplog.text
    with psycopg.connect(db_url) as conn:
        by_status = dict(
            conn.execute(
                "SELECT coalesce(provider_status, status), count(*) FROM jobs GROUP BY 1"
            ).fetchall()
        )
        events = Counter(
            dict(
                conn.execute(
                    "SELECT event_type || ':' || coalesce(to_status, ''), count(*) "
                    "FROM job_events GROUP BY 1"
                ).fetchall()
            )
        )
        done = conn.execute(
            "SELECT count(*) FROM jobs WHERE status = 'completed' AND result ? 'output'"
        ).fetchone()[0]
    assert by_status == {"running": 100, "completed": 100, "queued": 50}
    assert done == 100
    assert events["completed:completed"] == 100
    assert events["provider_status:running"] == 100
    assert events["provider_status:queued"] == 250  # the submit, recorded once each
    assert len(job_ids) == 250


FAST = (
    "  queue_processing: {interval_seconds: 0.05, dispatch_batch: 5}\n"
    "  job_status_polling: {interval_seconds: 0.05}\n"
    "  approval_expiration: {interval_seconds: 0.05}\n"
    "  worker_reaping: {interval_seconds: 0.05}\n"
    "  log_maintenance: {enabled: true, interval_seconds: 0.1}\n"
    "  periodic_jobs: {interval_seconds: 0.05}\n"
    "  job_retention: {interval_seconds: 0.1}\n"
)
Run = tuple[str, str, float, float]  # duty, holder, start, end


async def instrumented(
    db_url: str, remote: FakeProvider, holder: str, runs: list[Run], leases: bool = True
) -> BackgroundTaskManager:
    """A manager whose every duty run is recorded in ``runs`` (and lasts >= 10 ms)."""
    daemon = manager(db_url, config(remote, FAST), holder=holder)
    await daemon._open()
    if not leases:
        daemon.loop.leases = None
    for duty in daemon.loop.duties:
        duty.lease_ttl = 2

        async def recorded(action=duty.action, name=duty.name):
            start = time.monotonic()
            try:
                await asyncio.sleep(0.01)  # widen each run so overlaps would show
                return await action()
            finally:
                runs.append((name, holder, start, time.monotonic()))

        duty.action = recorded
    return daemon


def overlaps(runs: list[Run]) -> list[str]:
    """Each pair of runs of one duty where the later started before the earlier ended."""
    by_duty: dict[str, list[tuple[float, float, str]]] = {}
    for name, holder, start, end in runs:
        by_duty.setdefault(name, []).append((start, end, holder))
    found = []
    for name, spans in by_duty.items():
        spans.sort()
        for (_, e1, h1), (s2, _, h2) in itertools.pairwise(spans):
            if s2 < e1:
                found.append(f"{name}: {h1} ran until {e1:.3f}, {h2} started at {s2:.3f}")
    return found


def test_two_daemons_never_run_the_same_duty_at_once(db_url, remote):
    """Two managers on one database, short intervals, every run of every duty recorded
    (holder, start, end). While both run, then after the first stops (the second takes
    over): no two runs of one duty overlap, both daemons ran duties, and every job was
    submitted to the provider exactly once. Control: without leases, runs do overlap."""
    runs: list[Run] = []

    async def scenario():
        a = await instrumented(db_url, remote, "daemon-A", runs)
        b = await instrumented(db_url, remote, "daemon-B", runs)
        await a.start()
        every = len(a.loop.duties)
        await wait_for(lambda: len({n for n, h, _, _ in runs if h == "daemon-A"}) == every)
        await b.start()  # A leads every duty now; B contends for each lease every 50 ms
        for _ in range(3):
            await asyncio.to_thread(submit, db_url, 10)
            await asyncio.sleep(0.4)
        await a.stop()
        await asyncio.to_thread(submit, db_url, 10)
        await wait_for(lambda: len(remote.jobs) == 40)
        await asyncio.sleep(0.3)
        await b.stop()

    asyncio.run(scenario())
    assert {name for name, _, _, _ in runs} == {
        QUEUE,
        REMOTE_CANCELS,
        POLLING,
        "approval_expiration",
        "worker_reaping",
        "log_maintenance",
        "audit_retention",
        "webhook_retention",
        "job_counters",
        "rate_limit_prune",
        "periodic_jobs",
        "job_retention",
        "multipart_expiry",
    }
    assert overlaps(runs) == []
    assert {holder for _, holder, _, _ in runs} == {"daemon-A", "daemon-B"}
    posts = Counter(r.body["job_id"] for r in remote.requests if r.method == "POST")
    assert len(posts) == 40 and set(posts.values()) == {1}

    unguarded: list[Run] = []

    async def control():
        a = await instrumented(db_url, remote, "A", unguarded, leases=False)
        b = await instrumented(db_url, remote, "B", unguarded, leases=False)
        await asyncio.gather(a.start(), b.start())
        await asyncio.sleep(0.5)
        await asyncio.gather(a.stop(), b.stop())

    asyncio.run(control())
    assert overlaps(unguarded), "the check could not see an overlap even without leases"


def test_poll_only_dispatches_without_listen_through_a_transaction_pooler(bouncer, db_url, remote):
    """ORCHESTRATOR_POLL_ONLY's mode through PgBouncer (transaction pooling): no LISTEN
    session exists, and a submitted job is still dispatched by the periodic pass."""
    cfg = config(remote, "  queue_processing: {interval_seconds: 0.2, poll_only: true}")
    daemon = manager(bouncer.url(), cfg)

    async def scenario():
        await daemon.start()
        try:
            await asyncio.to_thread(submit, db_url, 1)
            await wait_for(lambda: len(remote.jobs) == 1)
            listening = scalar(
                db_url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query ILIKE 'LISTEN%%'",
            )
            return daemon.listener, listening
        finally:
            await daemon.stop()

    listener, listening = asyncio.run(scenario())
    assert listener is None and listening == 0
    assert scalar(db_url, "SELECT provider_status FROM jobs") == "queued"


def test_notify_wakes_queue_processing_long_before_the_poll_interval(db_url, remote):
    """Queue interval one hour: after the first (empty) pass only a NOTIFY can trigger
    the next, and the submitted job reaches the provider. Control: the same daemon in
    poll-only mode leaves a job undispatched."""

    async def run(poll_only: bool) -> int:
        background = (
            f"  queue_processing: {{interval_seconds: 3600, poll_only: {str(poll_only).lower()}}}"
        )
        daemon = manager(db_url, config(remote, background))
        await daemon.start()
        try:
            await wait_for(lambda: daemon.loop.outcomes.get(QUEUE) == "ran")
            before = len(remote.jobs)
            await asyncio.to_thread(submit, db_url, 1)
            if not poll_only:
                assert daemon.listener is not None
                await wait_for(lambda: len(remote.jobs) == before + 1)
            else:
                await asyncio.sleep(1.0)
            return len(remote.jobs) - before
        finally:
            await daemon.stop()

    assert asyncio.run(run(poll_only=False)) == 1
    assert asyncio.run(run(poll_only=True)) == 0


def test_approval_expiry_and_a_failing_provider_in_one_cycle(db_url, caplog):
    """One --once cycle: an overdue approval request is expired ("Expired 1 approval
    requests"), while the provider cannot be reached: the submit fails its attempt
    (the job goes back to the queue for a retry) and the other duties still ran."""
    with PsycopgExecutor.connect(db_url) as ex:
        ex.run(jobs.upsert_hub_user("u1", "o1"))
        ex.run(jobs.upsert_approval_rule("big", job_type="big", approval_ttl_seconds=1))
        waiting = ex.run(jobs.submit_job("u1", "big", {"command": "true"}))
    assert waiting.status == "awaiting_approval"
    job = submit(db_url, 1)[0]
    text = "providers:\n  cloud: {base_url: 'http://127.0.0.1:9', max_retries: 0}\n"
    daemon = manager(db_url, EnterpriseConfig(parse_config(text)))
    time.sleep(1.1)

    async def scenario():
        try:
            return await daemon.run_once()
        finally:
            await daemon.stop()

    with caplog.at_level(logging.INFO):
        outcomes = asyncio.run(scenario())
    assert outcomes[QUEUE] == "ran" and outcomes["approval_expiration"] == "ran"
    assert "Expired 1 approval requests" in caplog.text
    assert "Failed to submit job" in caplog.text
    assert scalar(db_url, "SELECT status FROM jobs WHERE job_id = %s", job) == "queued"
    assert (
        scalar(db_url, "SELECT status FROM jobs WHERE job_id = %s", waiting.job_id) == "cancelled"
    )


def test_the_seed_api_starts_and_stops_the_process_manager(db_url, remote, monkeypatch):
    """start_background_tasks() with DATABASE_URL from the environment and the config
    from get_enterprise_config(); get_task_manager() is that manager; stop clears it."""
    from orchestrator.config import get_settings
    from orchestrator.daemon import tasks
    from orchestrator.daemon.config import set_enterprise_config

    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    set_enterprise_config(config(remote))

    async def scenario():
        started = await tasks.start_background_tasks()
        try:
            assert tasks.get_task_manager() is started and started.running
            await asyncio.to_thread(submit, db_url, 1)
            await wait_for(lambda: len(remote.jobs) == 1)
        finally:
            await tasks.stop_background_tasks()
        return started

    try:
        started = asyncio.run(scenario())
    finally:
        set_enterprise_config(None)
        get_settings.cache_clear()
    assert not started.running and tasks._manager is None
    assert started.status()["cycle"] >= 1


def test_a_job_cancelled_during_its_submission_is_cancelled_at_the_provider(db_url, remote):
    """The hub cancels the job while the provider is accepting it: the daemon sees the
    cancellation when it records the provider's id and cancels the remote job too."""
    job_id = submit(db_url, 1)[0]

    def cancel_in_the_hub(body) -> None:
        with PsycopgExecutor.connect(db_url) as ex:
            assert ex.run(jobs.cancel_job(body["job_id"], "alice")).accepted

    remote.on_submit = cancel_in_the_hub
    daemon = manager(db_url, config(remote))

    async def scenario():
        await daemon._open()
        try:
            return await daemon.loop.run_cycle([d for d in daemon.loop.duties if d.name == QUEUE])
        finally:
            await daemon.stop()

    assert asyncio.run(scenario()) == {QUEUE: "ran"}
    assert [j["status"] for j in remote.jobs.values()] == ["canceled"]
    assert scalar(db_url, "SELECT status FROM jobs WHERE job_id = %s", job_id) == "cancelled"
