"""Duty leases (sql/functions/daemon/leases.sql) on real PostgreSQL: one holder at a time, under contention."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from orchestrator.daemon.calls import try_duty_lease
from orchestrator.daemon.leader import DutyLeases, LeaseLost
from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.db.psycopg import PsycopgExecutor


def test_one_holder_renews_others_wait_until_expiry_or_release(db_url):
    """A takes the lease; B is refused and told A holds it; A renews; after A's lease
    expires B takes it; A can no longer release it, B can."""
    with PsycopgExecutor.connect(db_url) as ex:
        assert ex.run(try_duty_lease("queue", "A", 30)).acquired
        refused = ex.run(try_duty_lease("queue", "B", 30))
        assert (refused.acquired, refused.holder) == (False, "A")
        assert ex.run(try_duty_lease("queue", "A", 30)).acquired
        ex.conn.execute("UPDATE daemon_leases SET expires_at = now() - interval '1 second'")
        assert ex.run(try_duty_lease("queue", "B", 30)).acquired
        release = "SELECT func_release_duty_lease('queue', %s)"
        assert ex.conn.execute(release, ["A"]).fetchone()[0] == {"released": False}
        assert ex.conn.execute(release, ["B"]).fetchone()[0] == {"released": True}
        assert ex.run(try_duty_lease("queue", "A", 30)).acquired


def test_exactly_one_of_many_concurrent_takers_gets_an_expired_lease(db_url):
    """16 connections ask for the same expired lease at once, 20 rounds: one winner
    each round (the ON CONFLICT ... WHERE re-check under the row lock)."""
    takers = 16
    conns = [psycopg.connect(db_url, autocommit=True) for _ in range(takers)]
    try:
        for round_ in range(20):
            conns[0].execute(
                "INSERT INTO daemon_leases VALUES ('d', 'old', now(), now() - interval '1 s') "
                "ON CONFLICT (duty) DO UPDATE SET holder = 'old', expires_at = now() - interval '1 s'"
            )
            barrier = threading.Barrier(takers)
            won: list[int] = []

            def take(n: int, barrier=barrier, won=won) -> None:
                barrier.wait()
                state = PsycopgExecutor(conns[n]).run(try_duty_lease("d", f"h{n}", 30))
                if state.acquired:
                    won.append(n)

            threads = [threading.Thread(target=take, args=(n,)) for n in range(takers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert len(won) == 1, (round_, won)
    finally:
        for c in conns:
            c.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("'', 'h', 30", "duty and holder must be non-empty"),
        ("'d', NULL, 30", "duty and holder must be non-empty"),
        ("'d', 'h', 0", "ttl_seconds must be from 1 to 86400, got 0"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(conn, args, message):
    """Blank names and out-of-range TTLs raise invalid_parameter_value."""
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute(f"SELECT func_try_duty_lease({args})")


def test_a_run_longer_than_the_ttl_keeps_its_lease_and_a_lost_lease_cancels_the_run(db_url):
    """A's run lasts three TTLs: renewals keep B out the whole time. Then A runs again
    and the lease is stolen under it (expired by hand, taken by C): A's run is cancelled
    with LeaseLost before it finishes."""

    async def scenario():
        async with await AsyncpgExecutor.connect(db_url) as ex:
            a, b, c = DutyLeases(ex, "A"), DutyLeases(ex, "B"), DutyLeases(ex, "C")
            b_refusals = []

            async def long_body():
                for _ in range(6):
                    await asyncio.sleep(0.5)
                    b_refusals.append((await b.acquire("slow", 1)).acquired)
                return "done"

            ran, result = await a.run_exclusive("slow", 1, long_body)
            finished = []

            async def stolen_body():
                await ex.pool.execute(
                    "UPDATE daemon_leases SET expires_at = now() - interval '1 s'"
                )
                await c.acquire("slow", 60)
                await asyncio.sleep(3)
                finished.append(True)

            with pytest.raises(LeaseLost, match="taken by C"):
                await a.run_exclusive("slow", 3, stolen_body)
            return ran, result, b_refusals, finished

    ran, result, b_refusals, finished = asyncio.run(scenario())
    assert (ran, result) == (True, "done")
    assert b_refusals == [False] * 6
    assert finished == []
