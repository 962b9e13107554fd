"""Microseconds per ``logger.info()`` on the calling thread, for four handlers, one run.

The question: what does database logging cost the code that logs? Target (issue 3):
ours at most NullHandler + 2 us (median of several runs).

Each handler is measured in two ways:
* ``caller only`` — bursts of 1,000 calls are timed, and between bursts (untimed) the
  background side catches up: our handler flushes to the database, the QueueListener
  empties its queue. During a burst the background thread is idle (our batch size is
  larger than a burst), so the number is the work done on the calling thread, with
  nothing piling up in memory between bursts as it would not in production;
* ``background on`` — the background side runs as in production (our handler ships to
  a real PostgreSQL; the QueueListener writes to /dev/null), so the number includes
  what the other thread takes from the caller through the GIL.

``--clock cpu`` times the calling thread's CPU time (``time.thread_time``) instead of
the wall clock: on a shared or throttled machine the wall clock also counts the time the
thread was not running at all, which can swamp a difference of a microsecond. Wall time
stays the default, because it is what a caller waits, locks included.

Run: python bench/handler_overhead.py [--database-url URL] [--calls N] [--repeats R]
     [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import queue
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from tabulate import tabulate

from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from orchestrator.logs.setup import DatabaseLogHandler
from orchestrator.logs.sinks.postgres import PostgresSink

# A setup returns (handler, drain between bursts, teardown).
Setup = Callable[[], tuple[logging.Handler, Callable[[], None], Callable[[], None]]]


def _nothing() -> None:
    pass


BURST = 1000


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def per_call_us(
    handler: logging.Handler, calls: int, drain: Callable[[], None], clock: Callable[[], float]
) -> float:
    """Mean microseconds of ``calls`` logger.info(), timed in bursts with ``drain`` between."""
    logger = logging.Logger("bench.overhead")  # not registered: no other handlers
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    info = logger.info
    spent = 0.0
    for start in range(0, calls, BURST):
        began = clock()
        for i in range(start, start + BURST):
            info("task %s progress %d%%", "a1b2", i)
        spent += clock() - began
        drain()
    return spent / calls * 1e6


def measure(setup: Setup, calls: int, repeats: int, clock: Callable[[], float]) -> float:
    """Median over ``repeats`` fresh setups."""
    results = []
    for _ in range(repeats):
        handler, drain, teardown = setup()
        try:
            results.append(per_call_us(handler, calls, drain, clock))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: an embedded server in a temp dir")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="what a call's cost is timed by"
    )
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed at exit

    def null() -> tuple[logging.Handler, Callable[[], None], Callable[[], None]]:
        return logging.NullHandler(), _nothing, _nothing

    def stream() -> tuple[logging.Handler, Callable[[], None], Callable[[], None]]:
        return logging.StreamHandler(devnull), _nothing, _nothing

    def stdlib_queue(between_bursts: bool) -> Setup:
        def setup() -> tuple[logging.Handler, Callable[[], None], Callable[[], None]]:
            q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
            listener = logging.handlers.QueueListener(q, logging.StreamHandler(devnull))

            def drain() -> None:  # run the listener only between bursts
                listener.start()
                while not q.empty():
                    time.sleep(0.0005)
                listener.stop()

            if between_bursts:
                return logging.handlers.QueueHandler(q), drain, _nothing
            listener.start()
            return logging.handlers.QueueHandler(q), _nothing, listener.stop

        return setup

    with database(args.database_url) as url:

        def ours(between_bursts: bool) -> Setup:
            def setup() -> tuple[logging.Handler, Callable[[], None], Callable[[], None]]:
                parked = {"batch_size": 10 * BURST, "flush_interval": 3600.0}
                handler = DatabaseLogHandler(
                    sink=lambda: PostgresSink(url),
                    source_id="bench",
                    capacity=2 * args.calls,
                    **(parked if between_bursts else {}),
                )

                def drain() -> None:
                    handler.flush(60)

                teardown = lambda: handler.close(timeout=60)  # noqa: E731
                return handler, (drain if between_bursts else _nothing), teardown

            return setup

        rows = []
        base = measure(null, args.calls, args.repeats, clock)
        for name, setup_idle, setup_busy in [
            ("NullHandler", null, null),
            ("StreamHandler(/dev/null)", stream, stream),
            ("QueueHandler + QueueListener", stdlib_queue(True), stdlib_queue(False)),
            ("DatabaseLogHandler (ours)", ours(True), ours(False)),
        ]:
            idle = (
                base
                if name == "NullHandler"
                else measure(setup_idle, args.calls, args.repeats, clock)
            )
            busy = measure(setup_busy, args.calls, args.repeats, clock)
            rows.append(
                (
                    name,
                    f"{idle:.2f}",
                    f"{idle - base:+.2f}",
                    f"{idle / base:.2f}x",
                    f"{busy:.2f}",
                    f"{busy - base:+.2f}",
                )
            )
    print(
        f"{args.calls:,} calls x {args.repeats} repeats, median; us per logger.info(), "
        f"{args.clock} clock; load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(
        tabulate(
            rows, headers=["handler", "caller only", "vs Null", "ratio", "background on", "vs Null"]
        )
    )


if __name__ == "__main__":
    main()
