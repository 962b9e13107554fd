"""bench/job_counters: what the job status counters (folded from job_events,
sql/functions/ops/job_status_totals.sql) cost the hottest path, claim + complete.

bench/job_queue.py's throughput scenario, re-run as an A/B in one scratch database
(its own embedded server, or a scratch database on --database-url; never the database
of an application): the same drain while another connection folds the counters every
--fold-every seconds ("with": a scrape folds, and the daemon every minute; every half
second is far more often) and with no fold during the drain ("without"), interleaved
for --rounds rounds, batches of 1 and 10. Target (OPS §7.4): with >= 90 % of without,
median of the rounds. After every "with" run the counters are folded to the end and
checked against the jobs table, so the number measured is a number that was right.

    python bench/job_counters.py [--database-url URL] [--jobs 3000] [--threads 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import job_queue

COUNTED = """
SELECT (SELECT coalesce(sum(transitions), 0) FROM job_status_totals WHERE to_status = 'completed'),
       (SELECT count(*) FROM jobs WHERE status = 'completed')
"""


def fold_to_the_end(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT func_fold_job_counters()").fetchone()[0]["more"]:  # type: ignore[index]
            pass


def restart_counters(url: str) -> None:
    """Counts from here on only (the jobs table is emptied by each drain)."""
    fold_to_the_end(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE job_status_totals")


@contextmanager
def folding(url: str, every: float | None) -> Iterator[None]:
    """A connection folding the counters every ``every`` seconds meanwhile (None: none)."""
    stop = threading.Event()

    def loop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.wait(every):
                conn.execute("SELECT func_fold_job_counters()")

    thread = threading.Thread(target=loop) if every else None
    if thread:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread:
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a server to create a scratch database on")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fold-every", type=float, default=0.5, help="seconds between folds")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with job_queue.scratch_database(args.database_url) as url:
        job_queue.prepare(url)
        rates: dict[tuple[int, bool], list[float]] = {}
        for _round in range(args.rounds):
            for batch in (1, 10):
                for enabled in (True, False):
                    restart_counters(url)
                    with folding(url, args.fold_every if enabled else None):
                        rate = job_queue.drain_rate(url, "hub", args.jobs, args.threads, batch)
                    rates.setdefault((batch, enabled), []).append(rate)
                    if enabled:
                        fold_to_the_end(url)
                        with psycopg.connect(url) as conn:
                            counted, actual = conn.execute(COUNTED).fetchone()  # type: ignore[misc]
                        assert counted == actual == args.jobs, (counted, actual)
    rows = []
    for batch in (1, 10):
        with_ = statistics.median(rates[batch, True])
        without = statistics.median(rates[batch, False])
        ratio = with_ / without
        rows.append(
            [
                f"claim x{batch} + complete",
                f"{without:,.0f}",
                f"{with_:,.0f}",
                f"{ratio:.2f}",
                " ".join(
                    f"{w / o:.2f}"
                    for w, o in zip(rates[batch, True], rates[batch, False], strict=True)
                ),
                ">= 0.90",
                "met" if ratio >= 0.9 else "NOT met",
            ]
        )
    print(
        f"\n{args.threads} threads, {args.jobs} jobs per run, "
        f"median of {args.rounds} interleaved rounds (jobs/s)"
    )
    print(
        tabulate(
            rows,
            headers=[
                "path",
                "without counters",
                "with counters",
                "with/without",
                "each round",
                "target",
                "verdict",
            ],
        )
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
