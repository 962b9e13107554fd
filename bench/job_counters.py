"""bench/job_counters: what the job status counters (the statement trigger on job_events,
sql/functions/ops/job_status_totals.sql) cost the hottest path, claim + complete.

bench/job_queue.py's throughput scenario, re-run as an A/B in one scratch database
(its own embedded server, or a scratch database on --database-url; never the database
of an application): the same drain with the trigger enabled ("with") and disabled
("without", ``ALTER TABLE job_events DISABLE TRIGGER`` in the scratch database only),
interleaved for --rounds rounds, batches of 1 and 10. Target (OPS §7.4): with >= 90 %
of without, median of the rounds. The counters are checked against the jobs table after
every "with" run, so the number measured is a number that was right.

    python bench/job_counters.py [--database-url URL] [--jobs 3000] [--threads 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import psycopg
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import job_queue

TRIGGER = "job_events_status_totals"
COUNTED = """
SELECT (SELECT coalesce(sum(transitions), 0) FROM (
            SELECT to_status, transitions FROM job_status_totals
            UNION ALL SELECT to_status, transitions FROM job_status_deltas) c
         WHERE to_status = 'completed'),
       (SELECT count(*) FROM jobs WHERE status = 'completed')
"""


def set_trigger(url: str, enabled: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"ALTER TABLE job_events {'ENABLE' if enabled else 'DISABLE'} TRIGGER {TRIGGER}"
        )
        conn.execute("TRUNCATE job_status_totals, job_status_deltas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a server to create a scratch database on")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with job_queue.scratch_database(args.database_url) as url:
        job_queue.prepare(url)
        rates: dict[tuple[int, bool], list[float]] = {}
        for _round in range(args.rounds):
            for batch in (1, 10):
                for enabled in (True, False):
                    set_trigger(url, enabled)
                    rate = job_queue.drain_rate(url, "hub", args.jobs, args.threads, batch)
                    rates.setdefault((batch, enabled), []).append(rate)
                    if enabled:
                        with psycopg.connect(url) as conn:
                            counted, actual = conn.execute(COUNTED).fetchone()  # type: ignore[misc]
                        assert counted == actual == args.jobs, (counted, actual)
        set_trigger(url, True)
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
