"""The provider circuit breaker, its state in PostgreSQL: a provider that keeps failing
stops being dispatched to (its jobs stay queued, no attempt spent); one half-open probe
after the cool-down, across any number of daemons; success closes it."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from orchestrator.daemon.duties import QueueDispatcher
from orchestrator.daemon.polling import JobStatusPoller
from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.jobs import calls as job_calls
from orchestrator.providers.circuit import CircuitBreaker
from orchestrator.providers.config import ProviderSection
from orchestrator.providers.http import HttpProvider
from tests.integration.jobkit import hub as job_hub
from tests.support.fake_provider import FakeProvider


def expire_cool_down(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE provider_health SET opened_at = opened_at - interval '1 hour', "
            "probe_started_at = probe_started_at - interval '1 hour'"
        )


def attempts(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        return dict(conn.execute("SELECT job_id::text, attempts FROM jobs").fetchall())


def breaker_row(db_url: str) -> tuple:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT state, consecutive_failures, failed_total, ok_total FROM provider_health "
            "WHERE provider = 'cloud'"
        ).fetchone()


def test_an_open_circuit_spends_no_attempt_and_a_probe_closes_it(db_url):
    section = ProviderSection(base_url="http://x", circuit_open_after=2)
    with job_hub(db_url) as h:
        h.user("alice")
        jobs = [str(h.submit("alice", provider="cloud", max_attempts=5).job_id) for _ in range(6)]

    with FakeProvider() as remote:

        async def scenario():
            async with await AsyncpgExecutor.connect(db_url) as ex:
                provider = HttpProvider("cloud", remote.url, max_retries=0, backoff=0)
                breaker = CircuitBreaker(ex, lambda: {"cloud": section})
                dispatcher = QueueDispatcher(ex, [provider], batch=10, breaker=breaker)
                try:
                    remote.fail_next(503, times=100)
                    first = await dispatcher()  # two failures open it; the rest released
                    row_open = breaker_row(db_url)
                    spent = attempts(db_url)
                    again = await dispatcher()  # open: nothing claimed
                    remote._failures.clear()
                    expire_cool_down(db_url)
                    probe = await dispatcher()  # half-open: one job, succeeds, closes
                    rest = await dispatcher()
                    return first, row_open, spent, again, probe, rest
                finally:
                    await provider.close()

        first, row_open, spent, again, probe, rest = asyncio.run(scenario())
    assert (first, again, probe, rest) == (0, 0, 1, 3)
    assert row_open[:3] == ("open", 2, 2)
    assert breaker_row(db_url)[0] == "closed"
    # the two submits that failed spent an attempt each (they wait for their retry); the
    # four jobs claimed in the same batch went back to the queue without spending one
    assert sorted(spent[j] for j in jobs) == [0, 0, 0, 0, 1, 1]
    assert len(remote.jobs) == 4


def test_only_one_daemon_gets_the_half_open_probe(db_url):
    async def scenario():
        async with await AsyncpgExecutor.connect(db_url, max_size=8) as ex:
            breaker = CircuitBreaker(ex, lambda: {"cloud": ProviderSection(base_url="http://x")})
            for _ in range(5):
                await breaker.record("cloud", False, "HTTP 503")
            closed_off = await breaker.admit("cloud")
            expire_cool_down(db_url)
            tries = await asyncio.gather(*(breaker.admit("cloud") for _ in range(8)))
            failed_probe = await breaker.record("cloud", False, "still down")
            return closed_off, tries, failed_probe

    closed_off, tries, failed_probe = asyncio.run(scenario())
    assert not closed_off.allow and closed_off.state == "open"
    assert [t.probe for t in tries].count(True) == 1
    assert [t.allow for t in tries].count(True) == 1
    assert failed_probe == "open"


def test_bad_arguments_are_one_line(db_url):
    with psycopg.connect(db_url) as conn, pytest.raises(psycopg.Error) as error:
        conn.execute("SELECT func_record_provider_call('cloud', true, NULL, 0)")
    assert "open_after must be from 1 to 1000" in str(error.value)


def test_polling_stops_asking_a_provider_whose_circuit_is_open(db_url):
    """Each failed polling pass counts once; at open_after the poller stops calling the
    provider at all, until the cool-down lets one pass through."""
    section = ProviderSection(base_url="http://x", circuit_open_after=2)
    with FakeProvider() as remote:
        with job_hub(db_url) as h:
            h.user("alice")
            h.submit("alice", provider="cloud")
            claimed = h.claim_one("provider:cloud", provider="cloud")
            h.run(
                job_calls.record_provider_status(
                    str(claimed.job_id), "queued", "remote-x", {}, claimed.lease_token
                )
            )

        async def scenario():
            async with await AsyncpgExecutor.connect(db_url) as ex:
                provider = HttpProvider("cloud", remote.url, max_retries=0, backoff=0)
                breaker = CircuitBreaker(ex, lambda: {"cloud": section})
                poller = JobStatusPoller(ex, [provider], breaker=breaker)
                try:
                    remote.fail_next(503, times=100)
                    for _ in range(4):
                        await poller()
                    asked_while_failing = len(remote.gets())
                    remote._failures.clear()
                    expire_cool_down(db_url)
                    await poller()  # the half-open pass: 404 (unknown job) means the API is up
                    return asked_while_failing
                finally:
                    await provider.close()

        asked = asyncio.run(scenario())
    assert asked == 2  # two failing passes opened it; the next two asked nothing
    assert breaker_row(db_url)[0] == "closed"
