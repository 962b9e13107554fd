"""The limiter through PgBouncer in TRANSACTION mode (Supavisor's mode): asyncpg clients
of two "instances" share one server connection, and the limit stays exact (no session
state, no named prepared statement)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.server.ratelimit.limiter import SqlLimiter
from tests.support.pgbouncer import PgBouncer


@pytest.fixture
def bouncer_of_one(db_url: str) -> Iterator[PgBouncer]:
    try:
        started = PgBouncer(db_url, pool_size=1).__enter__()
    except RuntimeError as error:  # missing binary: fail loudly, never skip
        pytest.fail(str(error), pytrace=False)
    yield started
    started.__exit__(None, None, None)


def test_two_instances_through_a_transaction_pooler_share_one_exact_limit(db_url, bouncer_of_one):
    async def scenario() -> list[bool]:
        instances = [
            await AsyncpgExecutor.connect(bouncer_of_one.url(), max_size=3, min_size=3)
            for _ in range(2)
        ]
        limiters = [SqlLimiter(), SqlLimiter()]
        try:
            decisions = await asyncio.gather(
                *(
                    limiters[i % 2].hit(instances[i % 2], "pool|10.0.0.1", 25, 600)
                    for i in range(60)
                )
            )
        finally:
            for db in instances:
                await db.close()
        assert all(d.shared for d in decisions), "a decision fell back to the process"
        return [d.allowed for d in decisions]

    allowed = asyncio.run(scenario())
    assert allowed.count(True) == 25
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT cardinality(hits), violations FROM rate_limit_buckets "
            "WHERE bucket = 'pool|10.0.0.1'"
        ).fetchone()
    assert stored == (25, 35)
