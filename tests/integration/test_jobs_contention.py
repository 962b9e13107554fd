"""The issue's contention test: 16 claimers, limit 1 per organisation, 10,000 claims.

Zero violations, checked from the event history: each job's running interval runs from
its ``claimed`` event to the event that ended it, and no two intervals of one
organisation overlap. Events are stamped with clock_timestamp(), and a claim can only
take an organisation's slot after the previous holder's completion committed, so a
correct store always yields ``next claimed_at >= previous completed_at``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta

import pytest

from orchestrator.jobs import calls
from tests.integration.jobkit import hub

CLAIMERS = 16
ORGANISATIONS = 8
CLAIMS = 10_000


def overlaps(intervals: dict[str, list[tuple[datetime, datetime]]]) -> list[str]:
    """Organisations in which one running interval starts before the previous one ended."""
    bad = []
    for org, spans in intervals.items():
        spans = sorted(spans)
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)):
            bad.append(org)
    return bad


def test_the_overlap_check_detects_a_violation():
    """The checker itself can fail: two overlapping intervals of one org are reported."""
    t = datetime(2026, 12, 1)
    ok = {"a": [(t, t + timedelta(1)), (t + timedelta(1), t + timedelta(2))]}
    bad = {"a": [(t, t + timedelta(2)), (t + timedelta(1), t + timedelta(3))]}
    assert overlaps(ok) == [] and overlaps(bad) == ["a"]


@pytest.mark.slow
def test_sixteen_claimers_never_exceed_one_running_job_per_organisation(db_url):
    """16 threads, each with its own connection, claim (batches of up to 4) and complete
    10,000 jobs of 8 organisations limited to 1 running job each."""
    with hub(db_url) as h:
        for i in range(ORGANISATIONS):
            for u in range(2):
                h.user(f"u{i}-{u}", f"org-{i}")
            h.set_limit("organization", f"org-{i}", 1)
        h.sql(
            "SELECT func_submit_job(jsonb_build_object('user_id', 'u' || (i %% %s) || '-' || (i %% 2), "
            "'job_type', 't', 'payload', jsonb_build_object('command', 'true'))) "
            "FROM generate_series(1, %s) i",
            [ORGANISATIONS, CLAIMS],
        )
        errors: list[BaseException] = []
        claimed = [0] * CLAIMERS

        def claimer(n: int) -> None:
            try:
                with hub(db_url) as mine:
                    idle_since = time.monotonic()
                    while time.monotonic() - idle_since < 2.0:
                        jobs = mine.claim(f"w{n}", 4)
                        if not jobs:
                            time.sleep(0.001)
                            continue
                        idle_since = time.monotonic()
                        claimed[n] += len(jobs)
                        for job in jobs:
                            out = mine.run(calls.complete_job(job.job_id, job.lease_token))
                            assert out.accepted, out
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=claimer, args=(n,)) for n in range(CLAIMERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sum(claimed) == CLAIMS
        assert h.one("SELECT count(*) FROM job_events WHERE event_type = 'claimed'") == CLAIMS
        assert h.one("SELECT count(*) FROM jobs WHERE status = 'completed'") == CLAIMS

        rows = h.sql(
            """SELECT j.organization_id, c.created_at, d.created_at
                 FROM jobs j
                 JOIN job_events c ON c.job_id = j.job_id AND c.event_type = 'claimed'
                 JOIN job_events d ON d.job_id = j.job_id AND d.event_type = 'completed'"""
        )
        intervals: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
        for org, start, end in rows:
            intervals[org].append((start, end))
        assert len(rows) == CLAIMS
        assert overlaps(intervals) == []
        # and the claimers did run in parallel: intervals of different organisations overlap
        everything = sorted((s, e) for spans in intervals.values() for s, e in spans)
        assert any(b[0] < a[1] for a, b in itertools.pairwise(everything))
        assert sum(1 for c in claimed if c) > 1
        assert h.counters() == {(t, i): 0 for t, i in h.counters()}
