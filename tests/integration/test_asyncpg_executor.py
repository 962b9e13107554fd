"""The asyncpg executor runs the same Call values as psycopg, directly and through PgBouncer.

Same statement text (orchestrator/db/statement.py), same results; a lost connection is a
DatabaseUnavailable and the next call reconnects; transaction pooling does not break it
(statement_cache_size=0: no named prepared statements to collide on a shared server
connection).
"""

# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from orchestrator.db.asyncpg import AsyncpgExecutor, connect
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.errors import DatabaseUnavailable
from orchestrator.logs import calls
from tests.integration.logrows import entry
from tests.integration.test_pgbouncer import bouncer_of_one  # noqa: F401


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(hours=1)


def test_asyncpg_and_psycopg_give_the_same_results(db_url):
    """Insert through asyncpg (jsonb argument, a rejected entry), then statistics
    (timestamptz arguments given as datetimes, sent as ISO text) agree with psycopg's."""
    batch = [entry(message=f"a {i}", log_level="ERROR" if i < 2 else "INFO") for i in range(10)]
    window = _window()

    async def scenario():
        async with await AsyncpgExecutor.connect(db_url) as executor:
            first = await executor.run(calls.insert_logs_batch([*batch, entry(log_level="LOUD")]))
            again = await executor.run(calls.insert_logs_batch(batch))
            stats = await executor.run(calls.log_statistics(*window))
            return first, again, stats

    first, again, stats = asyncio.run(scenario())
    assert (first.inserted, first.duplicates, [r.index for r in first.rejected]) == (10, 0, [10])
    assert (again.inserted, again.duplicates) == (0, 10)
    with PsycopgExecutor.connect(db_url) as sync:
        assert sync.run(calls.log_statistics(*window)) == stats
    assert (stats.total, stats.by_level) == (10, {"ERROR": 2, "INFO": 8})


def test_concurrent_calls_share_the_pool(db_url):
    """Calls at once from several tasks each get a connection of the pool."""

    async def scenario():
        async with await AsyncpgExecutor.connect(db_url, max_size=3) as executor:
            results = await asyncio.gather(
                *(
                    executor.run(calls.insert_logs_batch([entry(message=f"t{i}")]))
                    for i in range(12)
                )
            )
            return sum(r.inserted for r in results)

    assert asyncio.run(scenario()) == 12


def test_a_lost_connection_is_database_unavailable_and_the_next_call_reconnects(db_url):
    """The server ends our session: that call raises DatabaseUnavailable (one line), the
    following one works on a fresh connection."""

    async def scenario():
        async with await AsyncpgExecutor.connect(db_url, max_size=1) as executor:
            async with executor.pool.acquire() as conn:
                pid = await conn.fetchval("SELECT pg_backend_pid()")
            with psycopg.connect(db_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            with pytest.raises(DatabaseUnavailable) as lost:
                await executor.run(calls.maintain_log_partitions())
            after = await executor.run(calls.maintain_log_partitions())
            return str(lost.value), after

    message, after = asyncio.run(scenario())
    assert "\n" not in message and "database" in message
    assert after.created == ()


def test_an_unreachable_database_is_one_clear_line():
    """Nothing listens on the port: DatabaseUnavailable, not an OSError traceback."""

    async def scenario():
        await connect("postgresql://postgres@127.0.0.1:9/nope", timeout=2)

    with pytest.raises(DatabaseUnavailable, match="cannot connect to the database"):
        asyncio.run(scenario())


def test_asyncpg_through_a_transaction_pooler(bouncer_of_one, db_url):
    """Two pools through ONE shared server connection: with statement_cache_size=0 the
    unnamed statements never collide, and every call lands."""

    async def scenario():
        url = bouncer_of_one.url()
        async with (
            await AsyncpgExecutor.connect(url, max_size=2) as one,
            await AsyncpgExecutor.connect(url, max_size=2) as two,
        ):
            for i in range(5):
                await one.run(calls.insert_logs_batch([entry(message=f"one {i}")]))
                await two.run(calls.insert_logs_batch([entry(message=f"two {i}")]))
            results = await asyncio.gather(
                *(one.run(calls.log_statistics(*_window())) for _ in range(4)),
                *(two.run(calls.log_statistics(*_window())) for _ in range(4)),
            )
            return results

    results = asyncio.run(scenario())
    assert {r.total for r in results} == {10}
    with psycopg.connect(db_url) as direct:
        assert direct.execute("SELECT count(*) FROM system_logs").fetchone() == (10,)
