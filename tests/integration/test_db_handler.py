"""DatabaseLogHandler against a real PostgreSQL: delivery, retries, drops, exit, fork."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from orchestrator.errors import DatabaseUnavailable, InputRefused
from orchestrator.logs.calls import InsertResult
from orchestrator.logs.context import LogContext, set_correlation_id
from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.postgres import PostgresSink


def count(url: str, where: str = "true") -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM system_logs WHERE {where}").fetchone()[0]


@pytest.fixture
def make_logger(db_url: str) -> Iterator[Any]:
    """Builds (logger, handler) pairs on the test's database; closes them afterwards."""
    made: list[tuple[logging.Logger, DatabaseLogHandler]] = []

    def make(sink: Any = None, name: str | None = None, **options: Any):
        handler = DatabaseLogHandler(
            sink=sink or (lambda: PostgresSink(db_url)), source_id="test-orch", **options
        )
        logger = logging.getLogger(name or f"test.handler.{len(made)}.{time.monotonic_ns()}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, handler

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close(timeout=2)


def test_records_arrive_with_their_context(make_logger, db_url):
    """Message, level, logger, correlation id, context fields and exception text all land."""
    logger, handler = make_logger()
    set_correlation_id("cid-1")
    with LogContext(job_id="j-1", task_id="0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a"):
        logger.warning("disk %s%% full", 93, extra={"worker_id": "gpu-3", "mount": "/data"})
        try:
            raise ValueError("bad input")
        except ValueError:
            logger.exception("step failed")
    assert handler.flush(10)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT message, log_level, logger_name, correlation_id, task_id::text, worker_id, "
            "metadata, exception FROM system_logs ORDER BY timestamp"
        ).fetchall()
    assert rows[0][:6] == (
        "disk 93% full",
        "WARNING",
        logger.name,
        "cid-1",
        "0192f0c1-7a5e-7c3d-9b1a-3f2e4d5c6b7a",
        "gpu-3",
    )
    assert rows[0][6] == {"job_id": "j-1", "mount": "/data"}
    assert rows[1][1] == "ERROR"
    assert "ValueError: bad input" in rows[1][7]
    stats = handler.stats()
    assert stats["state"] == "up" and stats["sent"] == 2 and stats["queue_depth"] == 0


def test_flush_sends_everything_and_close_is_idempotent(make_logger, db_url):
    """flush() returns True once every earlier record is in; close twice is harmless."""
    logger, handler = make_logger(batch_size=50, flush_interval=60)
    for i in range(1234):
        logger.info("record %d", i)
    assert handler.flush(20)
    assert count(db_url) == 1234
    handler.close()
    handler.close()
    assert handler.stats()["state"] == "closed"


def test_a_burst_beyond_the_batch_size_is_coalesced_without_drops(make_logger, db_url):
    """A backlog goes out in bigger sends, so a burst within capacity loses nothing."""
    logger, handler = make_logger(capacity=50_000)
    for i in range(30_000):
        logger.info("burst %d", i)
    assert handler.flush(60)
    assert count(db_url) == 30_000
    assert handler.stats()["dropped"] == {}


class FlakySink:
    """A real PostgresSink that fails on demand, after or before really sending."""

    def __init__(self, url: str) -> None:
        self.inner = PostgresSink(url)
        self.label = "flaky"
        self.fail_after_send = 0
        self.fail_before_send = 0
        self.poison: str | None = None
        self.sends = 0

    def send(self, entries):
        self.sends += 1
        if self.fail_before_send:
            self.fail_before_send -= 1
            raise DatabaseUnavailable("connection refused (test)")
        if self.poison and any(e["message"] == self.poison for e in entries):
            raise InputRefused("invalid byte sequence (test)")
        result: InsertResult = self.inner.send(entries)
        if self.fail_after_send:
            self.fail_after_send -= 1
            raise DatabaseUnavailable("server closed the connection unexpectedly (test)")
        return result

    def check(self) -> None:
        self.inner.check()

    def close(self) -> None:
        self.inner.close()

    def abandon(self) -> None:
        self.inner.abandon()


def test_retry_after_an_ambiguous_failure_inserts_nothing_twice(make_logger, db_url):
    """The batch committed but the reply was lost: the retry finds duplicates, not new rows."""
    sink = FlakySink(db_url)
    sink.fail_after_send = 1
    logger, handler = make_logger(sink=lambda: sink, max_backoff=0.2)
    for i in range(40):
        logger.info("m%d", i)
    assert handler.flush(20)
    stats = handler.stats()
    assert count(db_url) == 40
    assert stats["retries"] == 1 and stats["duplicates"] == 40 and stats["sent"] == 40


def test_transient_failures_back_off_and_keep_the_records(make_logger, db_url):
    """Three refused connections later, every record is in, and retries are counted."""
    sink = FlakySink(db_url)
    sink.fail_before_send = 3
    logger, handler = make_logger(sink=lambda: sink, max_backoff=0.3)
    for i in range(10):
        logger.error("e%d", i)
    assert handler.flush(20)
    assert count(db_url) == 10
    assert handler.stats()["retries"] == 3
    assert handler.stats()["state"] == "up"


def test_a_data_error_isolates_the_bad_record(make_logger, db_url):
    """When the database refuses a whole call, halving finds the one bad record."""
    sink = FlakySink(db_url)
    sink.poison = "poison"
    logger, handler = make_logger(sink=lambda: sink, flush_interval=60)
    for i in range(20):
        logger.info("poison" if i == 13 else f"ok{i}")
    assert not handler.flush(20)  # not everything went: one record was refused
    assert count(db_url) == 19
    stats = handler.stats()
    assert stats["rejected"] == 1 and "invalid byte sequence" in stats["last_rejection"]


def test_info_flood_during_an_outage_does_not_drop_errors(make_logger, db_url):
    """Beyond 80 % of capacity INFO is dropped (counted) and WARNING+ still fits."""
    sink = FlakySink(db_url)
    sink.fail_before_send = 10**9
    logger, handler = make_logger(sink=lambda: sink, capacity=1000, max_backoff=0.05)
    for i in range(5000):
        logger.info("flood %d", i)
        if i % 100 == 0:
            logger.error("error %d", i)
    sink.fail_before_send = 0
    assert handler.flush(20) is True
    assert count(db_url, "log_level = 'ERROR'") == 50
    dropped = handler.stats()["dropped"]
    assert dropped["buffer_full"] > 0 and "buffer_full_warning_plus" not in dropped
    assert count(db_url) + dropped["buffer_full"] == 5050


def test_threads_and_tasks_keep_their_own_context(make_logger, db_url):
    """16 threads and 50 asyncio tasks log concurrently; each row has its own pairing."""
    logger, handler = make_logger()

    def work(n: int) -> None:
        set_correlation_id(f"thread-{n}")
        with LogContext(unit=f"thread-{n}"):
            for i in range(20):
                logger.info("t %d", i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def task(n: int) -> None:
        set_correlation_id(f"task-{n}")
        async with LogContext(unit=f"task-{n}"):
            for i in range(5):
                logger.info("a %d", i)
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(task(n) for n in range(50)))

    asyncio.run(main())
    assert handler.flush(20)
    with psycopg.connect(db_url) as conn:
        pairs = conn.execute("SELECT correlation_id, metadata->>'unit' FROM system_logs").fetchall()
    assert len(pairs) == 16 * 20 + 50 * 5
    assert all(cid == unit for cid, unit in pairs)


def test_the_handler_never_logs_into_itself(make_logger, db_url):
    """Driver loggers and the shipping thread's own records are not shipped."""
    logger, handler = make_logger()
    logging.getLogger("psycopg.pool").addHandler(handler)
    logging.getLogger("psycopg.pool").warning("driver noise")
    logging.getLogger("httpx").addHandler(handler)
    logging.getLogger("httpx").warning("driver noise")
    logger.info("mine")
    assert handler.flush(10)
    logging.getLogger("psycopg.pool").removeHandler(handler)
    logging.getLogger("httpx").removeHandler(handler)
    assert count(db_url) == 1


def test_unreachable_database_at_start_is_loud_and_marked_down(make_logger, capfd):
    """One stderr line, state down, records kept for later."""
    logger, handler = make_logger(
        sink=lambda: PostgresSink("postgresql://x@127.0.0.1:1/x"), max_backoff=0.1
    )
    logger.error("kept for later")
    deadline = time.monotonic() + 10
    while handler.stats()["state"] != "down" and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = handler.stats()
    assert stats["state"] == "down" and stats["queue_depth"] == 1
    assert "cannot connect" in stats["last_error"]
    err = capfd.readouterr().err
    assert err.count("database logging is DOWN") == 1


CHILD = textwrap.dedent("""
    import logging, os, sys, time
    from orchestrator.logs.setup import DatabaseLogHandler
    from orchestrator.logs.sinks.postgres import PostgresSink
    from orchestrator.logs.setup import exit_on_sigterm
    handler = DatabaseLogHandler(sink=lambda: PostgresSink(sys.argv[1]), source_id="child",
                                 flush_interval=60, batch_size=100000, capacity=100000)
    root = logging.getLogger(); root.addHandler(handler); root.setLevel(logging.INFO)
    mode, n = sys.argv[2], int(sys.argv[3])
    for i in range(n):
        logging.info("child record %d", i)
    if mode == "sigterm":
        exit_on_sigterm()
        print("ready", flush=True)
        time.sleep(60)
    """)


def _child(db_url: str, mode: str, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, mode, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_records_queued_at_normal_exit_are_delivered(db_url):
    """The seed lost up to 2,000 queued records per exit; here all N arrive."""
    child = _child(db_url, "exit", 5000)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert count(db_url, "source_id = 'child'") == 5000


def test_sigterm_flushes_before_exit(db_url):
    """SIGTERM becomes a normal exit, so the atexit drain runs."""
    child = _child(db_url, "sigterm", 3000)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM
    assert count(db_url, "source_id = 'child'") == 3000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_fork_gives_the_child_its_own_buffer_thread_and_connection(make_logger, db_url):
    """Parent and child both deliver; the child ships none of the parent's records and
    does not break the parent's connection."""
    logger, handler = make_logger(flush_interval=60)
    logger.info("parent before fork")
    assert handler.flush(10)
    logger.info("parent pending at fork")
    pid = os.fork()
    if pid == 0:  # child: exit without running pytest's teardown
        code = 1
        try:
            logger.info("from child")
            code = 0 if handler.flush(10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    logger.info("parent after fork")
    assert handler.flush(10)
    with psycopg.connect(db_url) as conn:
        messages = sorted(m for (m,) in conn.execute("SELECT message FROM system_logs"))
    assert messages == [
        "from child",
        "parent after fork",
        "parent before fork",
        "parent pending at fork",
    ]


class ExplodingSink(FlakySink):
    """A sink with a bug: the first send raises something no sink should raise."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.explode = 1

    def send(self, entries):
        if self.explode:
            self.explode -= 1
            raise RuntimeError("surprise")
        return super().send(entries)


def test_the_shipping_thread_survives_an_unexpected_error(make_logger, db_url):
    """A surprise exception marks the handler down; the thread lives on and delivers."""
    sink = ExplodingSink(db_url)
    logger, handler = make_logger(sink=lambda: sink, max_backoff=0.2)
    logger.info("survivor")
    assert handler.flush(20)
    assert count(db_url) == 1
    assert "unexpected RuntimeError: surprise" in (handler.stats()["last_error"] or "")


DICTCONFIG_CHILD = textwrap.dedent("""
    import logging, logging.config
    logging.config.dictConfig({
        "version": 1,
        "handlers": {"db": {"class": "orchestrator.logs.DatabaseLogHandler", "level": "INFO",
                            "source_type": "worker", "source_id": "dictconfig"}},
        "root": {"level": "INFO", "handlers": ["db"]},
    })
    for i in range(2000):
        logging.info("configured by dictConfig %d", i)
    """)


@pytest.mark.slow
def test_dictconfig_on_the_embedded_default_delivers_everything_at_exit(tmp_path, pgdata):
    """dictConfig builds the handler from the settings; the exit drain runs before the
    embedded server's own exit hook stops it."""
    from orchestrator.db import migrate
    from orchestrator.db.embedded import start_embedded

    data_dir = pgdata
    server = start_embedded(data_dir)
    with psycopg.connect(server.url, autocommit=True) as conn:
        migrate.migrate(conn)
    server.stop()  # the child starts it again, from inside the handler
    env = {**os.environ, "EMBEDDED_PG_DATA_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", DICTCONFIG_CHILD],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "DOWN" not in done.stderr and "undelivered" not in done.stderr
    server = start_embedded(data_dir)
    try:
        assert count(server.url, "source_id = 'dictconfig'") == 2000
    finally:
        server.stop()


def test_a_handler_built_without_arguments_takes_the_db_log_settings(monkeypatch, db_url):
    """dictConfig passes no batch size: DB_LOG_BATCH_SIZE and friends fill it in."""
    from orchestrator.config import get_settings

    monkeypatch.setenv("DB_LOG_BATCH_SIZE", "7")
    monkeypatch.setenv("DB_LOG_FLUSH_INTERVAL", "0.5")
    monkeypatch.setenv("DB_LOG_BUFFER_SIZE", "1234")
    monkeypatch.setenv("DB_LOG_BUFFER_BYTES", "2000000")
    monkeypatch.setenv("ORCHESTRATOR_INSTANCE_ID", "from-env")
    get_settings.cache_clear()
    try:
        handler = DatabaseLogHandler(sink=lambda: PostgresSink(db_url))
        try:
            assert (handler.batch_size, handler.flush_interval, handler.capacity) == (7, 0.5, 1234)
            assert handler.source_id == "from-env" and handler.max_bytes == 2_000_000
        finally:
            handler.close(timeout=2)
    finally:
        get_settings.cache_clear()
