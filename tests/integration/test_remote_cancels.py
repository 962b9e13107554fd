"""A job cancelled in the hub after an external provider took it is cancelled there too.

Real PostgreSQL, the daemon's own duties, and the HTTP stand-in of a cloud provider
(tests/support/fake_provider.py): once cancelled in the hub a job is no longer active,
so only the remote-cancellation duty (sql/functions/jobs/remote_cancels.sql) still stops it at the provider.
"""

# ruff: noqa: F811

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from orchestrator.daemon.tasks import QUEUE, REMOTE_CANCELS
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as jobs
from orchestrator.jobs.errors import JobError, job_errors
from tests.integration.test_daemon import config, manager, remote, scalar, submit  # noqa: F401
from tests.support.fake_provider import FakeProvider


def run_duties(db_url: str, remote: FakeProvider, *rounds: str) -> list[dict[str, str]]:
    """Runs the named duties, one cycle per name, in one daemon; their outcomes."""
    daemon = manager(db_url, config(remote))

    async def scenario() -> list[dict[str, str]]:
        await daemon._open()
        assert daemon.loop is not None
        try:
            outcomes = []
            for name in rounds:
                duty = [d for d in daemon.loop.duties if d.name == name]
                outcomes.append(await daemon.loop.run_cycle(duty))
            return outcomes
        finally:
            await daemon.stop()

    return asyncio.run(scenario())


def remote_id(db_url: str, job_id: str) -> str:
    return scalar(db_url, "SELECT provider_job_id FROM jobs WHERE job_id = %s", job_id)


def cancel(db_url: str, job_id: str) -> None:
    with PsycopgExecutor.connect(db_url) as ex:
        assert ex.run(jobs.cancel_job(job_id, "alice", "not needed any more")).accepted


def cancel_posts(remote: FakeProvider) -> list[str]:
    return [r.path for r in remote.requests if r.method == "POST" and r.path.endswith("/cancel")]


def events(db_url: str, job_id: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT event_type, from_status, to_status, details FROM job_events"
            " WHERE job_id = %s AND event_type LIKE 'provider_cancel%%' ORDER BY event_id",
            [job_id],
        ).fetchall()


def test_a_dispatched_job_cancelled_in_the_hub_is_cancelled_at_the_provider(db_url, remote):
    """Three jobs at the provider, one cancelled in the hub: the remote-cancellation pass
    cancels that one there (a 503 leaves it for the next pass), records the provider's
    answer with one event, and leaves the others alone; a further pass asks nothing."""
    job_ids = submit(db_url, 3)
    assert run_duties(db_url, remote, QUEUE) == [{QUEUE: "ran"}]
    remote.set_status(remote_id(db_url, job_ids[0]), "running")
    cancel(db_url, job_ids[0])

    remote.fail_next(503, times=2)  # the provider is having a moment: both attempts fail
    run_duties(db_url, remote, REMOTE_CANCELS)
    target = remote_id(db_url, job_ids[0])
    assert remote.jobs[target]["status"] == "running"
    assert scalar(db_url, "SELECT provider_status FROM jobs WHERE job_id = %s", job_ids[0]) == (
        "queued"
    )

    before = len(cancel_posts(remote))
    run_duties(db_url, remote, REMOTE_CANCELS, REMOTE_CANCELS)
    assert cancel_posts(remote)[before:] == [f"/jobs/{target}/cancel"]  # once, not twice
    assert remote.jobs[target]["status"] == "canceled"
    assert [remote.jobs[remote_id(db_url, j)]["status"] for j in job_ids[1:]] == ["queued"] * 2
    row = scalar(
        db_url, "SELECT row(status, provider_status) FROM jobs WHERE job_id = %s", job_ids[0]
    )
    assert row == ("cancelled", "cancelled")
    [(event, old, new, details)] = events(db_url, job_ids[0])
    assert (event, old, new, details["provider_job_id"]) == (
        "provider_cancelled",
        "queued",
        "cancelled",
        target,
    )


def test_a_provider_refusing_the_cancel_for_good_is_recorded_and_logged(db_url, remote, caplog):
    """The provider no longer knows the job (404, permanent): the hub records
    cancel_failed with the error, logs it at ERROR, and stops asking."""
    [job_id] = submit(db_url, 1)
    run_duties(db_url, remote, QUEUE)
    cancel(db_url, job_id)
    del remote.jobs[remote_id(db_url, job_id)]
    with caplog.at_level(logging.INFO, logger="orchestrator"):
        run_duties(db_url, remote, REMOTE_CANCELS, REMOTE_CANCELS)
    assert len(cancel_posts(remote)) == 1
    assert scalar(db_url, "SELECT provider_status FROM jobs WHERE job_id = %s", job_id) == (
        "cancel_failed"
    )
    [(event, _, new, details)] = events(db_url, job_id)
    assert (event, new) == ("provider_cancel_failed", "cancel_failed")
    assert "404" in details["error"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"Failed to cancel job {job_id}" in m for m in errors), errors


def local_job(db_url: str) -> str:
    with PsycopgExecutor.connect(db_url) as ex:
        ex.run(jobs.upsert_hub_user("u1", "o1"))
        return ex.run(jobs.submit_job("u1", "shell", {"command": "true"})).job_id


def test_a_local_job_never_appears_on_the_remote_cancel_list(db_url):
    """Local jobs have no provider job id: cancelling one leaves nothing for the daemon."""
    job_id = local_job(db_url)
    cancel(db_url, job_id)
    with PsycopgExecutor.connect(db_url) as ex:
        assert ex.run(jobs.list_remote_cancels("local")).rows == ()


@pytest.mark.parametrize(
    ("state", "args", "message"),
    [
        ("queued", {"provider_status": "cancelled"}, "is queued: a remote cancellation"),
        ("cancelled", {"provider_status": "gone"}, "unknown provider status 'gone'"),
        ("cancelled", {"provider_status": "cancelled"}, "has no provider job id"),
    ],
)
def test_record_remote_cancel_refuses_what_it_cannot_record(db_url, state, args, message):
    job_id = local_job(db_url)
    if state == "cancelled":
        cancel(db_url, job_id)
    unknown = "0190a000-0000-7000-8000-000000000000"
    with PsycopgExecutor.connect(db_url) as ex:
        with pytest.raises(JobError, match=message), job_errors():
            ex.run(jobs.record_remote_cancel(job_id, **args))
        with pytest.raises(JobError, match="unknown job"), job_errors():
            ex.run(jobs.record_remote_cancel(unknown, "cancelled"))
