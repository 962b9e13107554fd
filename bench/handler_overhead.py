"""Microseconds per ``logger.info()`` on the calling thread, ours and its peers, one run.

The question: what does database logging cost the code that logs, as it runs in
production? Target (issue 20, item 3): ours at most StreamHandler(/dev/null) in the same
run, for a plain call, a call inside ``LogContext``, and a call with ``exc_info``.

Every handler runs in its normal mode: ours ships to a real PostgreSQL on its own
thread while the calls are timed; QueueHandler's listener and OpenTelemetry's
BatchLogRecordProcessor write to /dev/null on theirs. So each number includes what the
background thread takes from the caller through the GIL. Our buffer (and so the
stdlib's unbounded queue) holds the whole timed burst: this measures the cost of a
call, not the database's rate (bench/end_to_end.py does that; a caller logging faster
than the database takes for longer than the buffer lasts is slowed to its pace, see
README "What it promises").

Peers: NullHandler (the floor), StreamHandler to /dev/null, QueueHandler +
QueueListener, and OpenTelemetry's LoggingHandler + BatchLogRecordProcessor (installed
in the bench's own environment: ``pip install -e '.[bench]'``; the row is left out,
and says so, without it).

``--clock cpu`` times the calling thread's CPU time (``time.thread_time``) instead of
the wall clock: on a shared or throttled machine the wall clock also counts the time the
thread was not running at all.

Run: flock /tmp/hub-bench.lock python bench/handler_overhead.py [--database-url URL]
     [--calls N] [--repeats R] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import queue
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from tabulate import tabulate

from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from orchestrator.logs.context import LogContext
from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.postgres import PostgresSink

# A setup returns (handler, teardown).
Setup = Callable[[], tuple[logging.Handler, Callable[[], None]]]


def _nothing() -> None:
    pass


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


MODES = ("plain", "LogContext", "exc_info")


def per_call_us(
    handler: logging.Handler, calls: int, clock: Callable[[], float], mode: str
) -> float:
    """Mean microseconds of ``calls`` logger.info() in ``mode``."""
    logger = logging.Logger("bench.overhead")  # not registered: no other handlers
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    info = logger.info
    try:
        raise ValueError("bench failure")
    except ValueError:
        failure = sys.exc_info()
    began = clock()
    if mode == "plain":
        for i in range(calls):
            info("task %s progress %d%%", "a1b2", i)
    elif mode == "LogContext":
        with LogContext(job_id="xyz789", provider="replicate"):
            for i in range(calls):
                info("task %s progress %d%%", "a1b2", i)
    else:
        for i in range(calls):
            info("task %s failed at %d", "a1b2", i, exc_info=failure)
    return (clock() - began) / calls * 1e6


def measure(setup: Setup, calls: int, repeats: int, clock: Callable[[], float], mode: str) -> float:
    """Median over ``repeats`` fresh setups."""
    results = []
    for _ in range(repeats):
        handler, teardown = setup()
        try:
            results.append(per_call_us(handler, calls, clock, mode))
        finally:
            teardown()
    return statistics.median(results)


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A migrated scratch database (embedded server unless a URL is given)."""
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bench_overhead")
            conn.execute("CREATE DATABASE bench_overhead")
        target = url.rsplit("/", 1)[0] + "/bench_overhead"
        with psycopg.connect(target, autocommit=True) as conn:
            migrate.migrate(conn)
        yield target
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = start_embedded(Path(tmp) / "pg")
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                migrate.migrate(conn)
            yield server.url
        finally:
            server.stop()


def otel_setup(devnull: Any) -> Setup | None:
    """OpenTelemetry's LoggingHandler with a BatchLogRecordProcessor, or None when the
    bench extra is not installed."""
    try:
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogExporter
    except ImportError:
        return None

    def setup() -> tuple[logging.Handler, Callable[[], None]]:
        provider = LoggerProvider()
        provider.add_log_record_processor(BatchLogRecordProcessor(ConsoleLogExporter(out=devnull)))
        return LoggingHandler(logger_provider=provider), provider.shutdown

    return setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an embedded server in a temp dir")
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="what a call's cost is timed by"
    )
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed at exit
    load_before = os.getloadavg()[0]

    def null() -> tuple[logging.Handler, Callable[[], None]]:
        return logging.NullHandler(), _nothing

    def stream() -> tuple[logging.Handler, Callable[[], None]]:
        return logging.StreamHandler(devnull), _nothing

    def stdlib_queue() -> tuple[logging.Handler, Callable[[], None]]:
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        listener = logging.handlers.QueueListener(q, logging.StreamHandler(devnull))
        listener.start()
        return logging.handlers.QueueHandler(q), listener.stop

    with database(args.database_url) as url:

        def ours() -> tuple[logging.Handler, Callable[[], None]]:
            handler = DatabaseLogHandler(
                sink=lambda: PostgresSink(url), source_id="bench", capacity=2 * args.calls
            )
            return handler, lambda: handler.close(timeout=120)

        setups: list[tuple[str, Setup | None]] = [
            ("NullHandler", null),
            ("StreamHandler(/dev/null)", stream),
            ("QueueHandler + QueueListener", stdlib_queue),
            ("OpenTelemetry LoggingHandler + batch", otel_setup(devnull)),
            ("DatabaseLogHandler (ours)", ours),
        ]
        results: dict[tuple[str, str], float] = {}
        for mode in MODES:
            calls = args.calls if mode != "exc_info" else max(1000, args.calls // 10)
            for name, setup in setups:
                if setup is not None:
                    results[name, mode] = measure(setup, calls, args.repeats, clock, mode)
    rows = []
    for name, setup in setups:
        if setup is None:
            rows.append((name, "not installed: pip install -e '.[bench]'", "", "", "", "", ""))
            continue
        row: list[str] = [name]
        for mode in MODES:
            us, stream_us = results[name, mode], results["StreamHandler(/dev/null)", mode]
            row += [f"{us:.2f}", f"{us / stream_us:.2f}x"]
        rows.append(tuple(row))
    print(
        f"{args.calls:,} calls ({args.calls // 10:,} with exc_info) x {args.repeats} repeats, "
        f"median; us per logger.info() in the normal mode, {args.clock} clock; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    headers = ["handler"]
    for mode in MODES:
        headers += [f"{mode} us", "vs Stream"]
    print(tabulate(rows, headers=headers, disable_numparse=True))


if __name__ == "__main__":
    main()
