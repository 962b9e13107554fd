"""Where a claim + completion spends its server time (issue 15): the same loop run inside
the server, so no client, driver or network is timed, only SQL and commits.

Each row is a PL/pgSQL procedure that claims and completes N queued jobs one at a
time, committing as its client would, in a scratch database (never the one the bench
is pointed at); rows run in interleaved rounds and the median is printed, with its
ratio to the bare loop of the same round:

* ``bare loop`` — bench/job_queue.py's baseline: ``UPDATE ... WHERE id IN (SELECT ...
  FOR UPDATE SKIP LOCKED) RETURNING`` then ``UPDATE ... SET status = 'done'``, two
  commits a job;
* ``hub: func_claim_jobs, func_complete_job`` — the shipped functions, two commits;
* ``hub: func_complete_jobs_and_claim`` — the shipped fused call, one commit a job;
* ``hub's writes, one statement`` — what the hub writes for a job (queue entry and job
  row twice, two events with their foreign key) in one hand-written
  statement with no checks, no lock order, no verdicts, no JSON: a floor for the hub's
  schema, not something the hub could ship (it skips every guarantee the functions give).

The last row shows how much of the gap to the bare loop is the schema's writes and how
much the functions around them. Run: python bench/job_queue_server.py [--database-url
URL] [--jobs N] [--rounds R] (wrap it in ``flock /tmp/hub-bench.lock``).
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # the bench's directory would shadow the stdlib (see job_queue.py)

import argparse
import statistics

import psycopg
from tabulate import tabulate

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after the stdlib: no shadowing
import job_queue as queue_bench


def _procedure(name: str, declare: str, setup: str, step: str) -> str:
    """A procedure running ``step`` n times after ``setup`` (untimed); µs per step out."""
    return f"""
CREATE OR REPLACE PROCEDURE {name}(n integer, INOUT us double precision DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; {declare}
BEGIN
{setup}
    t0 := clock_timestamp();
    FOR i IN 1..n LOOP
{step}
    END LOOP;
    us := extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END $$;
"""


FIRST_CLAIM = """    SELECT x -> 'jobs' -> 0 ->> 'job_id', x -> 'jobs' -> 0 ->> 'lease_token'
      INTO v_id, v_tok FROM func_claim_jobs('w', 1) x;
    COMMIT;"""

LOOPS = (
    _procedure(
        "bench_bare_loop",
        "v bigint;",
        "",
        """        UPDATE bench_bare SET status = 'running', worker = 'w'
         WHERE id IN (SELECT id FROM bench_bare WHERE status = 'queued'
                       ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING id INTO v;
        COMMIT;
        UPDATE bench_bare SET status = 'done' WHERE id = v;
        COMMIT;""",
    )
    + _procedure(
        "bench_hub_separate",
        "j jsonb;",
        "",
        """        j := func_claim_jobs('w', 1) -> 'jobs' -> 0;
        COMMIT;
        PERFORM func_complete_job((j ->> 'job_id')::uuid, (j ->> 'lease_token')::uuid);
        COMMIT;""",
    )
    + _procedure(
        "bench_hub_fused",
        "v_id uuid; v_tok uuid; r jsonb;",
        FIRST_CLAIM,
        """        r := func_complete_jobs_and_claim(jsonb_build_array(jsonb_build_object(
                 'job_id', v_id, 'lease_token', v_tok)), 'w', 1) -> 'claim' -> 'jobs' -> 0;
        v_id := r ->> 'job_id';
        v_tok := r ->> 'lease_token';
        COMMIT;""",
    )
    + _procedure(
        "bench_hub_writes_floor",
        "v_id uuid; v_tok uuid;",
        FIRST_CLAIM,
        """        WITH dq AS (
            UPDATE job_queue q SET status = 'completed', run_after = now(), lease_token = NULL,
                   lease_expires_at = NULL, updated_at = now()
             WHERE q.job_id = v_id AND q.status = 'running' AND q.lease_token = v_tok
            RETURNING q.job_id, q.attempt, q.worker_id
        ), dj AS (
            UPDATE jobs j SET status = 'completed', attempts = dq.attempt, result = '{}',
                   finished_at = now(), updated_at = now()
              FROM dq WHERE j.job_id = dq.job_id RETURNING j.job_id
        ), de AS (
            INSERT INTO job_events (job_id, event_type, from_status, to_status, worker_id, details)
            SELECT dq.job_id, 'completed', 'running', 'completed', dq.worker_id,
                   jsonb_build_object('attempt', dq.attempt) FROM dq
        ), cand AS (
            SELECT q.job_id FROM job_queue q
             WHERE q.status = 'queued' AND q.provider = 'local' AND q.run_after <= now()
             ORDER BY q.claim_key LIMIT 1 FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE job_queue q SET status = 'running', attempt = q.attempt + 1, worker_id = 'w',
                   lease_token = gen_random_uuid(), lease_expires_at = now() + interval '20 s',
                   claimed_at = now(), updated_at = now()
              FROM cand WHERE q.job_id = cand.job_id
            RETURNING q.job_id, q.attempt, q.lease_token, q.lease_expires_at
        ), cj AS (
            UPDATE jobs j SET status = 'running', attempts = c.attempt,
                   started_at = coalesce(j.started_at, now()), updated_at = now()
              FROM claimed c WHERE j.job_id = c.job_id RETURNING j.job_id, j.payload
        ), ce AS (
            INSERT INTO job_events (job_id, event_type, from_status, to_status, worker_id, details)
            SELECT c.job_id, 'claimed', 'queued', 'running', 'w',
                   jsonb_build_object('attempt', c.attempt, 'lease_expires_at', c.lease_expires_at)
              FROM claimed c
        )
        SELECT c.job_id, c.lease_token INTO v_id, v_tok FROM claimed c JOIN cj USING (job_id);
        COMMIT;""",
    )
)

ROWS = {
    "bare loop": ("bench_bare_loop", "2"),
    "hub: func_claim_jobs, func_complete_job": ("bench_hub_separate", "2"),
    "hub: func_complete_jobs_and_claim": ("bench_hub_fused", "1"),
    "hub's writes, one statement (floor)": ("bench_hub_writes_floor", "1"),
}


def one_run(url: str, procedure: str, jobs: int) -> float:
    """µs a job for ``procedure`` over ``jobs`` freshly queued jobs (both queues refilled,
    vacuumed and analysed first, as bench/job_queue.py does)."""
    queue_bench.reset(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(queue_bench.HUB_FILL, [jobs + 10])
        conn.execute(
            'INSERT INTO bench_bare (payload) SELECT \'{"command": "true"}\' '
            "FROM generate_series(1, %s)",
            [jobs + 10],
        )
        for table in ("jobs", "job_queue", "bench_bare"):
            conn.execute(f"VACUUM ANALYZE {table}")
    with psycopg.connect(url, autocommit=True) as conn:  # a new session: no plan cached
        row = conn.execute(f"CALL {procedure}(%s)", [jobs]).fetchone()
    assert row is not None
    return float(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server to create a scratch database on")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per row and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    with queue_bench.scratch_database(args.database_url) as url:
        queue_bench.prepare(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(LOOPS)
            server = conn.execute("SELECT version()").fetchone()[0]  # type: ignore[index]
        names = list(ROWS)
        runs: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                runs[name].append(one_run(url, ROWS[name][0], args.jobs))
        rows = []
        for name in names:
            ratios = [b / x for b, x in zip(runs["bare loop"], runs[name], strict=True)]
            rows.append(
                [
                    name,
                    ROWS[name][1],
                    f"{statistics.median(runs[name]):,.0f}",
                    f"{statistics.median(ratios):.2f}",
                    " ".join(f"{x:,.0f}" for x in runs[name]),
                ]
            )
        print(f"server: {server.split(' on ')[0]}; {args.jobs} jobs a row and round")
        print(
            "claim + complete inside the server, one job at a time (µs a job, median of "
            f"{args.rounds} interleaved rounds; speed vs bare: median of each round's ratio)"
        )
        print(
            tabulate(
                rows,
                headers=["loop", "commits a job", "µs a job", "speed vs bare", "each round (µs)"],
            )
        )


if __name__ == "__main__":
    main()
