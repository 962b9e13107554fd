"""Periodic jobs (one job per tick across daemons) and the daemon's takeover of a dead
leader's duties within ~25 s whatever the duty's interval."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.daemon.leader import DutyLeases
from orchestrator.daemon.loop import ControlLoop, Duty
from orchestrator.daemon.periodic import enqueue_due_ticks
from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.errors import InputRefused
from orchestrator.jobs import calls as jobs
from orchestrator.periodic import calls as periodic
from orchestrator.periodic.cron import check_cron, next_tick
from tests.integration.jobkit import hub


def test_each_tick_submits_one_job_however_many_daemons_race_for_it(db_url):
    """Two daemons run the periodic duty at the same moment, for five ticks: five jobs,
    one per tick (each with the tick's idempotency key), and the schedule moved on."""
    with hub(db_url) as h:
        h.user("alice")
        h.run(
            periodic.upsert_periodic_job(
                "nightly",
                "0 3 * * *",
                jobs.job_object("alice", "report", {"command": "echo report"}),
                datetime.now(UTC) + timedelta(days=1),
            )
        )

        async def race() -> list[int]:
            async with (
                await AsyncpgExecutor.connect(db_url) as one,
                await AsyncpgExecutor.connect(db_url) as two,
            ):
                counts = []
                for tick in range(5):
                    await one.pool.execute(  # the tick has come
                        "UPDATE periodic_jobs SET next_run_at = "
                        "date_trunc('day', now()) - make_interval(days => $1) + interval '3 hours'",
                        5 - tick,
                    )
                    got = await asyncio.gather(enqueue_due_ticks(one), enqueue_due_ticks(two))
                    counts.append(sum(got))
                return counts

        assert asyncio.run(race()) == [1, 1, 1, 1, 1]
        keys = [r[0] for r in h.sql("SELECT idempotency_key FROM jobs ORDER BY job_id")]
        assert len(keys) == 5 and len(set(keys)) == 5
        assert all(k.startswith("periodic:nightly:") and k.endswith("T03:00:00Z") for k in keys)
        next_run = h.one("SELECT next_run_at FROM periodic_jobs")
        assert next_run > datetime.now(UTC) and (next_run.hour, next_run.minute) == (3, 0)


def test_a_schedule_is_refused_in_one_line_when_it_cannot_work(db_url):
    """A bad cron expression (checked by the CLI and the daemon with croniter), a job
    template that would not submit, or one that sets its own idempotency key."""
    with pytest.raises(InputRefused, match="invalid cron expression 'every day'"):
        check_cron("every day")
    assert next_tick("*/15 * * * *", datetime(2026, 1, 1, 0, 7, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 15, tzinfo=UTC
    )
    with hub(db_url) as h:
        h.user("alice")
        soon = datetime.now(UTC)
        with pytest.raises(InputRefused, match="priority must be an integer from 0 to 1000"):
            h.run(
                periodic.upsert_periodic_job(
                    "p", "@hourly", {"user_id": "alice", "job_type": "t", "priority": -1}, soon
                )
            )
        template = jobs.job_object("alice", "t", {"command": "x"}, idempotency_key="k")
        with pytest.raises(InputRefused, match="sets no idempotency_key"):
            h.run(periodic.upsert_periodic_job("p", "@hourly", template, soon))
        assert h.one("SELECT count(*) FROM jobs") == 0
        assert h.one("SELECT count(*) FROM periodic_jobs") == 0


def test_a_dead_leaders_duty_is_taken_over_before_its_interval_comes_round(db_url):
    """A leads a duty whose interval is an hour and dies without releasing its lease (its
    loop is cancelled, as a SIGKILL would leave it). B, started alongside, takes the lease
    once it lapses and runs the duty at once, not an hour later."""

    async def scenario() -> list[str]:
        runs: list[str] = []
        async with await AsyncpgExecutor.connect(db_url) as ex:

            def loop(holder: str) -> ControlLoop:
                async def action() -> None:
                    runs.append(holder)

                duty = Duty("hourly_duty", 3600, action, "Error", lease_ttl=2)
                return ControlLoop([duty], DutyLeases(ex, holder))

            a, b = loop("A"), loop("B")
            stop_a, stop_b = asyncio.Event(), asyncio.Event()
            task_a = asyncio.ensure_future(a.run_until(stop_a))
            while runs != ["A"]:
                await asyncio.sleep(0.05)
            task_b = asyncio.ensure_future(b.run_until(stop_b))
            await asyncio.sleep(1.5)  # B's first cycle found the duty held; keeper tries on
            assert runs == ["A"]
            task_a.cancel()  # A dies holding the lease
            await asyncio.gather(task_a, return_exceptions=True)
            for _ in range(200):  # the lease lapses after 2 s; B's keeper tries every 0.5 s
                if "B" in runs:
                    break
                await asyncio.sleep(0.05)
            stop_b.set()
            await task_b
        return runs

    assert asyncio.run(scenario()) == ["A", "B"]
