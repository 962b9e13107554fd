"""The hub through PgBouncer in TRANSACTION pooling mode (the mode of Supabase's Supavisor).

Each transaction may run on any of the pool's server connections, and several clients
share them (``default_pool_size = 2``, or 1 for the negative controls), so anything that
relied on server-side prepared statements, session state (SET, TEMP tables kept across
transactions, session advisory locks) or LISTEN would break or leak here. The checks of
what landed run on the DIRECT connection, not through the bouncer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from orchestrator.db import migrate
from orchestrator.db.psycopg import PsycopgExecutor, connect
from orchestrator.errors import HubError
from orchestrator.logs import calls
from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.postgres import PostgresSink
from tests.integration.logrows import entry
from tests.support.pgbouncer import PgBouncer


def _bouncer(backend_url: str, pool_size: int = 2) -> PgBouncer:
    try:
        return PgBouncer(backend_url, pool_size=pool_size).__enter__()
    except RuntimeError as error:  # missing binary or failed start: fail loudly, never skip
        message = str(error)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def bouncer(db_url: str) -> Iterator[PgBouncer]:
    """A transaction-mode PgBouncer (pool of 2) in front of this test's migrated database."""
    started = _bouncer(db_url)
    yield started
    started.__exit__(None, None, None)


@pytest.fixture
def bouncer_of_one(db_url: str) -> Iterator[PgBouncer]:
    """The same with ONE server connection, so that clients deterministically share it."""
    started = _bouncer(db_url, pool_size=1)
    yield started
    started.__exit__(None, None, None)


@pytest.fixture
def empty_bouncer(empty_db_url: str) -> Iterator[PgBouncer]:
    """A transaction-mode PgBouncer in front of an EMPTY database (migration tests)."""
    started = _bouncer(empty_db_url)
    yield started
    started.__exit__(None, None, None)


def _scalar(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]


def test_bouncer_is_in_front_and_in_transaction_mode(bouncer, db_url):
    """The bouncer reaches this test's database and its config says pool_mode=transaction."""
    with connect(bouncer.url()) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (
            psycopg.conninfo.conninfo_to_dict(db_url)["dbname"],
        )
    assert bouncer.version >= (1, 0)
    config = (bouncer.log_path.parent / "pgbouncer.ini").read_text()
    assert "pool_mode = transaction" in config and "default_pool_size = 2" in config


# -- the log handler's staged COPY path ---------------------------------------------------

HANDLERS = 3
THREADS_PER_HANDLER = 2
RECORDS_PER_THREAD = 1500


def test_handlers_share_two_server_connections_and_deliver_every_record_once(bouncer, db_url):
    """3 handlers x 2 threads through a pool of 2: every record lands once, no errors, and
    at most 2 TEMP staging tables exist (the handlers' transactions shared server
    connections and reused the staging table another client created)."""
    url = bouncer.url()
    made: list[tuple[logging.Logger, DatabaseLogHandler]] = []
    try:
        for h in range(HANDLERS):
            handler = DatabaseLogHandler(
                sink=lambda: PostgresSink(url, label="PgBouncer"),
                source_id=f"bounced-{h}",
                batch_size=25,
                flush_interval=0.05,
                capacity=50_000,
                max_backoff=0.5,
            )
            logger = logging.getLogger(f"test.pgbouncer.{h}.{time.monotonic_ns()}")
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            logger.addHandler(handler)
            made.append((logger, handler))

        start = threading.Barrier(HANDLERS * THREADS_PER_HANDLER)

        def work(h: int, t: int) -> None:
            logger = made[h][0]
            start.wait()
            for i in range(RECORDS_PER_THREAD):
                logger.info("h%d t%d #%d", h, t, i)

        threads = [
            threading.Thread(target=work, args=(h, t))
            for h in range(HANDLERS)
            for t in range(THREADS_PER_HANDLER)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _, handler in made:
            assert handler.flush(60) is True
        per_handler = THREADS_PER_HANDLER * RECORDS_PER_THREAD
        for _, handler in made:
            stats = handler.stats()
            assert stats["state"] == "up", stats
            assert (stats["errors"], stats["retries"], stats["rejected"]) == (0, 0, 0), stats
            assert (stats["sent"], stats["duplicates"], stats["dropped"]) == (per_handler, 0, {})
        total = HANDLERS * per_handler
        with psycopg.connect(db_url) as direct:
            counts = direct.execute(
                "SELECT count(*), count(DISTINCT message || source_id) FROM system_logs"
            ).fetchone()
            by_source = dict(
                direct.execute(
                    "SELECT source_id, count(*) FROM system_logs GROUP BY source_id"
                ).fetchall()
            )
            # TEMP tables of the bouncer's server sessions (still open: the pool keeps them).
            staging_tables = direct.execute(
                "SELECT count(*) FROM pg_class "
                "WHERE relname = 'system_logs_stage_v2' AND relpersistence = 't'"
            ).fetchone()
        assert counts == (total, total)
        assert by_source == {f"bounced-{h}": per_handler for h in range(HANDLERS)}
        # Clean batches go by direct COPY; any staged batch made at most one table per
        # server session, never one per client.
        assert staging_tables is not None and staging_tables[0] <= bouncer.pool_size
    finally:
        for logger, handler in made:
            logger.removeHandler(handler)
            handler.close(timeout=5)


def test_postgres_sink_alternating_clients_on_one_server_connection(bouncer_of_one, db_url):
    """Two sinks take turns on ONE server connection: each batch finds the other client's
    staging table empty (ON COMMIT DELETE ROWS) and nothing is inserted twice."""
    url = bouncer_of_one.url()
    first, second = PostgresSink(url), PostgresSink(url)
    try:
        batches = [[_entry(f"b{n} r{i}") for i in range(40)] for n in range(6)]
        results = [(first if n % 2 == 0 else second).send(b) for n, b in enumerate(batches)]
        again = second.send(batches[0])  # a retry of the other client's batch
    finally:
        first.close()
        second.close()
    assert [(r.inserted, r.duplicates) for r in results] == [(40, 0)] * 6
    assert (again.inserted, again.duplicates) == (0, 40)
    assert _scalar(db_url, "SELECT count(*) FROM system_logs") == 240
    assert (
        _scalar(
            db_url,
            "SELECT count(*) FROM pg_class "
            "WHERE relname = 'system_logs_stage_v2' AND relpersistence = 't'",
        )
        == 1
    )


def test_a_staging_table_of_another_shape_in_a_pooled_session_does_not_block_delivery(
    bouncer_of_one, db_url
):
    """A server session still holding an older hub's staging table (pooled server
    sessions outlive client connections and deploys) does not block delivery: each
    shape of the table has its own versioned name."""
    url = bouncer_of_one.url()
    with connect(url) as old_client:  # an older hub's table, under its own name
        old_client.execute(
            "CREATE TEMP TABLE system_logs_stage (id text, old_column jsonb) ON COMMIT DELETE ROWS"
        )
    sink = PostgresSink(url)
    try:
        for _ in range(2):  # the retry reconnects, yet lands on the same server session
            with contextlib.suppress(HubError):
                sink.send([_entry("after an upgrade")])
                break
        else:
            sink.send([_entry("after an upgrade")])
    finally:
        sink.close()
    assert _scalar(db_url, "SELECT count(*) FROM system_logs") == 1


def _entry(message: str) -> dict[str, Any]:
    """An entry as the handler builds it for the staged path (epoch float timestamp)."""
    e = entry(message=message)
    e["timestamp"] = time.time()
    return e


# -- the jsonb RPC path -------------------------------------------------------------------


def test_jsonb_rpc_calls_through_the_bouncer(bouncer, db_url):
    """func_insert_logs_batch (with a rejected entry and a retried batch) and
    func_log_statistics work through the bouncer from two alternating executors."""
    url = bouncer.url()
    batch = [entry(message=f"rpc {i}", log_level="ERROR" if i < 3 else "INFO") for i in range(20)]
    with PsycopgExecutor(connect(url)) as one, PsycopgExecutor(connect(url)) as two:
        first = one.run(calls.insert_logs_batch([*batch, entry(log_level="LOUD")]))
        retried = two.run(calls.insert_logs_batch(batch))
        now = datetime.now(UTC)
        stats = one.run(calls.log_statistics(now - timedelta(hours=1), now + timedelta(hours=1)))
        stats_again = two.run(
            calls.log_statistics(now - timedelta(hours=1), now + timedelta(hours=1))
        )
    assert (first.inserted, first.duplicates, len(first.rejected)) == (20, 0, 1)
    assert first.rejected[0].index == 20
    assert (retried.inserted, retried.duplicates) == (0, 20)
    assert (stats.total, stats.errors, stats.by_level) == (20, 3, {"ERROR": 3, "INFO": 17})
    assert stats_again == stats
    assert _scalar(db_url, "SELECT count(*) FROM system_logs") == 20


# -- migrations -----------------------------------------------------------------------------


def test_migrate_an_empty_database_through_the_bouncer(empty_bouncer, empty_db_url):
    """Every file applies through the bouncer, a second run applies nothing, and the
    recorded checksums match the files."""
    files = migrate.discover()
    names = [f.name for f in files.migrations] + [f.name for f in files.functions]
    with connect(empty_bouncer.url()) as conn:
        applied = migrate.migrate(conn)
        again = migrate.migrate(conn)
        status = migrate.status(conn)
    assert applied == names
    assert again == []
    assert (status.pending, status.edited, status.missing) == ([], [], [])
    with psycopg.connect(empty_db_url) as direct:
        recorded = dict(
            direct.execute("SELECT filename, checksum FROM public.schema_migrations").fetchall()
        )
        staged = direct.execute("SELECT to_regprocedure('public.func_insert_staged_logs()')")
        assert staged.fetchone() != (None,)
    assert recorded == {f.name: f.checksum for f in files.migrations}


def test_concurrent_migrations_through_the_bouncer_apply_each_file_once(
    empty_bouncer, empty_db_url
):
    """Two migrate() runs at once through the pool of 2: the transaction-scoped advisory
    lock serialises them, each file is applied by exactly one of them."""
    files = migrate.discover()
    names = sorted([f.name for f in files.migrations] + [f.name for f in files.functions])
    results: list[list[str]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(n: int) -> None:
        try:
            with connect(empty_bouncer.url()) as conn:
                start.wait()
                results[n] = migrate.migrate(conn)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert not set(results[0]) & set(results[1])
    assert sorted(results[0] + results[1]) == names
    with psycopg.connect(empty_db_url) as direct:
        rows = direct.execute(
            "SELECT filename FROM public.schema_migrations ORDER BY filename"
        ).fetchall()
    assert [r[0] for r in rows] == [f.name for f in files.migrations]


# -- negative controls: what transaction pooling breaks, so the hub must not rely on it ---


def test_control_session_state_leaks_between_clients_of_one_server_connection(
    bouncer_of_one, db_url
):
    """Deterministic proof of transaction mode: with ONE server connection, client B runs
    in client A's server session (same backend pid), sees A's session-level SET and holds
    A's session advisory lock (and can release it); directly, two clients are separate."""
    url = bouncer_of_one.url()
    key = 0x6875_6274_6573_74  # arbitrary
    with connect(url) as a, connect(url) as b:
        pid_a = a.execute("SELECT pg_backend_pid()").fetchone()
        a.execute("SET hub_test.marker = 'set by A'")
        a.execute("SELECT pg_advisory_lock(%s)", [key])
        pid_b, marker = b.execute(
            "SELECT pg_backend_pid(), current_setting('hub_test.marker', true)"
        ).fetchone()
        held_by_b = b.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid()"
        ).fetchone()
        released_by_b = b.execute("SELECT pg_advisory_unlock(%s)", [key]).fetchone()
    assert (pid_b,) == pid_a
    assert marker == "set by A"
    assert held_by_b == (1,)
    assert released_by_b == (True,)
    # Control of the control: without the bouncer, two connections are two sessions.
    with connect(db_url) as a, connect(db_url) as b:
        a.execute("SET hub_test.marker = 'set by A'")
        assert (
            a.execute("SELECT pg_backend_pid()").fetchone()
            != b.execute("SELECT pg_backend_pid()").fetchone()
        )
        assert b.execute("SELECT current_setting('hub_test.marker', true)").fetchone() in (
            (None,),
            ("",),
        )


def test_control_server_side_prepared_statements_collide_through_the_bouncer(bouncer_of_one):
    """Why the hub connects with prepare_threshold=None: two psycopg clients that prepare
    server-side statements (both name theirs _pg3_0) collide on the shared server
    connection; the hub's own connect() runs the same query from both without error."""
    url = bouncer_of_one.url()
    query = "SELECT %s::int + 1"
    with (
        psycopg.connect(url, autocommit=True, prepare_threshold=0) as a,
        psycopg.connect(url, autocommit=True, prepare_threshold=0) as b,
    ):
        assert a.execute(query, [1]).fetchone() == (2,)
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            b.execute(query, [1])
    with connect(url) as a, connect(url) as b:
        for n in range(5):
            assert a.execute(query, [n]).fetchone() == (n + 1,)
            assert b.execute(query, [n]).fetchone() == (n + 1,)
