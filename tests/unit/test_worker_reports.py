"""The worker's completion batcher on its own: hand-over, batching, a failing send."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from orchestrator.jobs.model import ClaimedJob
from orchestrator.worker.reports import Completion, CompletionBatcher


def _job(n: int) -> ClaimedJob:
    return ClaimedJob(
        job_id=f"job-{n}",
        lease_token=f"token-{n}",
        attempt=1,
        job_type="t",
        provider="local",
        priority=100,
        payload={},
        user_id="alice",
        organization_id="acme",
        lease_expires_at=datetime.now(UTC),
    )


def test_a_job_thread_is_free_while_its_batch_is_in_flight():
    """complete() returns at once, even while the call carrying the batch before it has
    not answered: job threads never wait for the database. The completions handed over
    meanwhile go together in the next call."""
    release = threading.Event()
    sent: list[list[str]] = []

    def send(batch: list[Completion]) -> None:
        sent.append([job.job_id for job, _ in batch])
        release.wait(10)

    batcher = CompletionBatcher(send)
    try:
        batcher.complete(_job(1), {})
        for _ in range(200):  # the first call is in flight (blocked in send)
            if sent:
                break
            threading.Event().wait(0.01)
        done = threading.Event()

        def hand_over() -> None:
            batcher.complete(_job(2), {})
            batcher.complete(_job(3), {})
            done.set()

        threading.Thread(target=hand_over).start()
        assert done.wait(5), "complete() waited for the call in flight"
    finally:
        release.set()
        batcher.close()
    assert sent == [["job-1"], ["job-2", "job-3"]]


def test_a_send_that_raises_does_not_stop_the_batches_after_it():
    """send handles its own errors; one it lets through (a bug) is logged, and the
    thread goes on sending."""
    sent: list[str] = []
    first_sent = threading.Event()

    def send(batch: list[Completion]) -> None:
        sent.extend(job.job_id for job, _ in batch)
        if batch[0][0].job_id == "job-1":
            first_sent.set()
            raise RuntimeError("a bug in send")

    batcher = CompletionBatcher(send)
    batcher.complete(_job(1), {})
    assert first_sent.wait(5)
    batcher.complete(_job(2), {})
    batcher.close()  # sends what is waiting before it returns
    assert sent == ["job-1", "job-2"]
