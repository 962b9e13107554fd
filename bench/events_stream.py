"""bench/events_stream: what the event stream (GET /api/events/stream) costs the job
hub's hottest path, and what one stream's read costs the database.

1. ``job_events.tx`` (migration 0075: a ``pg_current_xact_id()`` default and the
   ``(tx, event_id)`` index) on claim + complete: bench/job_queue.py's drain, as an A/B
   in one scratch database (its own embedded server, or a scratch database on
   --database-url; never an application's database): "with" as migrated, "without" with
   the index dropped and the default a constant (in the scratch database only),
   interleaved for --rounds rounds, batches of 1 and 10. Target: with >= 90 % of
   without, median of the rounds (the bar the job counters met, OPS §7.4).
2. An idle stream's poll (``func_job_events_after`` at the tail, what every open stream
   runs every ``ORCHESTRATOR_EVENTS_POLL_INTERVAL``) against a ``SELECT 1`` round trip
   measured in the same run. Target: at most 2x (median).
3. Catching up: events/s read from a backlog of every event the drains wrote, in the
   stream's pages of 200. Target: at least 10,000 events/s (a day of a busy hub's
   events in seconds). The issue sets no target for 2 and 3; these are this bench's.

    python bench/events_stream.py [--database-url URL] [--jobs 1500] [--threads 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import job_queue


def set_stream_columns(url: str, enabled: bool) -> None:
    """As migrated (``enabled``), or without the index and with a constant default."""
    with psycopg.connect(url, autocommit=True) as conn:
        if enabled:
            conn.execute("ALTER TABLE job_events ALTER COLUMN tx SET DEFAULT pg_current_xact_id()")
            conn.execute(
                "CREATE INDEX IF NOT EXISTS job_events_stream_idx ON job_events (tx, event_id)"
            )
        else:
            conn.execute("DROP INDEX IF EXISTS job_events_stream_idx")
            conn.execute("ALTER TABLE job_events ALTER COLUMN tx SET DEFAULT '0'::xid8")


def interleaved_ms(conn: psycopg.Connection[object], a: str, b: str, n: int) -> tuple[float, float]:
    """Median milliseconds of ``a`` and ``b`` run alternately ``n`` times each (after a
    warm-up), so both see the same moments of a noisy machine."""
    conn.execute(a).fetchone()
    conn.execute(b).fetchone()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for sql, into in ((a, times[0]), (b, times[1])):
            started = time.perf_counter()
            conn.execute(sql).fetchone()
            into.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a server to create a scratch database on")
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    with job_queue.scratch_database(args.database_url) as url:
        job_queue.prepare(url)
        rates: dict[tuple[int, bool], list[float]] = {}
        for _round in range(args.rounds):
            for batch in (1, 10):
                for enabled in (True, False):
                    set_stream_columns(url, enabled)
                    rate = job_queue.drain_rate(url, "hub", args.jobs, args.threads, batch)
                    rates.setdefault((batch, enabled), []).append(rate)
        set_stream_columns(url, True)
        for batch in (1, 10):
            with_, without = (statistics.median(rates[batch, e]) for e in (True, False))
            rounds = " ".join(
                f"{w / o:.2f}" for w, o in zip(rates[batch, True], rates[batch, False], strict=True)
            )
            rows.append([f"claim x{batch} + complete (jobs/s)", f"{without:,.0f}",
                         f"{with_:,.0f}", f"{with_ / without:.2f}", rounds, ">= 0.90",
                         "met" if with_ / without >= 0.9 else "NOT met"])  # fmt: skip

        # the last drain left its events; give them tx values as live writes do
        with psycopg.connect(url, autocommit=True) as conn:
            fill = job_queue.HUB_FILL
            conn.execute(fill, [args.jobs])
            conn.execute("ANALYZE job_events")
            events = conn.execute("SELECT count(*) FROM job_events").fetchone()[0]  # type: ignore[index]
            tail = conn.execute("SELECT func_job_events_after(NULL) ->> 'position'").fetchone()[0]  # type: ignore[index]
            one, poll = interleaved_ms(
                conn, "SELECT 1", f"SELECT func_job_events_after({int(tail)})", 1000
            )
            rows.append(["idle stream poll (ms, median)", f"{one:.3f} (SELECT 1)",
                         f"{poll:.3f}", f"{poll / one:.2f}", "", "<= 2.00",
                         "met" if poll / one <= 2 else "NOT met"])  # fmt: skip
            started = time.perf_counter()
            position, read = 0, 0
            while True:
                page = conn.execute(
                    "SELECT func_job_events_after(%s, row_limit => 200)", [position]
                ).fetchone()[0]  # type: ignore[index]
                read += len(page["events"])
                position = page["position"]
                if not page["more"]:
                    break
            rate = read / (time.perf_counter() - started)
            assert read == events, (read, events)
            rows.append([f"catch-up over {events:,} events (events/s)", "", f"{rate:,.0f}",
                         "", "", ">= 10,000", "met" if rate >= 10_000 else "NOT met"])  # fmt: skip
    print(
        f"\n{args.threads} threads, {args.jobs} jobs per drain, "
        f"median of {args.rounds} interleaved rounds"
    )
    print(
        tabulate(
            rows,
            headers=["what", "baseline", "measured", "ratio", "each round", "target", "verdict"],
        )
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
