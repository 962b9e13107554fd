"""Helpers shared by the job-store tests: a hub through the real psycopg executor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg

from orchestrator.db.calls import Call
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls
from orchestrator.jobs.model import ClaimedJob, SubmitResult

T = TypeVar("T")


class Hub:
    """One connection to a test database, running job calls and plain SQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.executor = PsycopgExecutor.connect(url)

    @property
    def conn(self) -> psycopg.Connection[Any]:
        return self.executor.conn

    def run(self, call: Call[T]) -> T:
        return self.executor.run(call)

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []

    def one(self, query: str, params: Any = None) -> Any:
        return self.sql(query, params)[0][0]

    def user(self, user_id: str, org: str = "org-1") -> None:
        self.run(calls.upsert_hub_user(user_id, org))

    def set_limit(self, scope_type: str, scope_id: str | None, max_running: int | None) -> None:
        self.run(calls.set_concurrency_limit(scope_type, scope_id, max_running))

    def submit(self, user_id: str = "alice", **options: Any) -> SubmitResult:
        payload = options.pop("payload", {"command": "echo hi"})
        job_type = options.pop("job_type", "render")
        return self.run(calls.submit_job(user_id, job_type, payload, **options))

    def claim(self, worker: str = "w1", max_jobs: int = 1, **options: Any) -> list[ClaimedJob]:
        return list(self.run(calls.claim_jobs(worker, max_jobs, **options)).jobs)

    def claim_one(self, worker: str = "w1", **options: Any) -> ClaimedJob:
        jobs = self.claim(worker, 1, **options)
        assert len(jobs) == 1, jobs
        return jobs[0]

    def status(self, job_id: str) -> tuple[str, str]:
        """(jobs.status, job_queue.status)."""
        row = self.sql(
            "SELECT j.status, q.status FROM jobs j JOIN job_queue q USING (job_id) WHERE job_id = %s",
            [job_id],
        )
        return row[0]

    def events(self, job_id: str) -> list[tuple[str, str | None, str | None]]:
        return [
            (e, f, t)
            for e, f, t in self.sql(
                "SELECT event_type, from_status, to_status FROM job_events WHERE job_id = %s ORDER BY event_id",
                [job_id],
            )
        ]

    def counters(self) -> dict[tuple[str, str], int]:
        return {
            (t, i): n
            for t, i, n in self.sql("SELECT scope_type, scope_id, running FROM concurrency_limits")
        }

    def close(self) -> None:
        self.executor.close()


@contextmanager
def hub(url: str) -> Iterator[Hub]:
    h = Hub(url)
    try:
        yield h
    finally:
        h.close()


def running_counts(h: Hub) -> dict[tuple[str, str], int]:
    """The running count each limited scope should hold, recomputed from job_queue."""
    return {
        (t, i): n
        for t, i, n in h.sql(
            """SELECT l.scope_type, l.scope_id, count(q.job_id)
                 FROM concurrency_limits l
                 LEFT JOIN job_queue q ON q.status = 'running' AND (l.scope_type = 'global'
                      OR (l.scope_type = 'organization' AND q.organization_id = l.scope_id)
                      OR (l.scope_type = 'user' AND q.user_id = l.scope_id))
                GROUP BY 1, 2"""
        )
    }
