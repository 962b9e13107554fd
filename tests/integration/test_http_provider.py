"""HttpProvider against a real HTTP server standing in for a cloud provider."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.logs.context import set_correlation_id
from orchestrator.providers.base import ProviderError, ProviderJob
from orchestrator.providers.http import HttpProvider
from tests.support.fake_provider import FakeProvider


@pytest.fixture
def remote():
    with FakeProvider() as server:
        yield server


def _run(coro):
    return asyncio.run(coro)


def test_submit_status_cancel_round_trip(remote):
    """Submit returns the provider's id and first status; a retried submit of the same
    attempt is the same remote job (idempotency key); status synonyms map to the hub's
    words; cancel answers 'canceled', read as 'cancelled'; the correlation id travels."""
    job = ProviderJob("job-1", "render", {"frames": 3}, user_id="u1", priority=7)

    async def scenario():
        provider = HttpProvider("cloud", remote.url, token="secret", backoff=0)
        try:
            set_correlation_id("corr-42")
            first = await provider.submit(job)
            again = await provider.submit(job)
            remote.set_status(first.provider_job_id, "processing", progress=0.5)
            running = await provider.status(first.provider_job_id)
            remote.set_status(first.provider_job_id, "succeeded", output="s3://x")
            done = await provider.status(first.provider_job_id)
            cancelled = await provider.cancel(first.provider_job_id)
            return first, again, running, done, cancelled
        finally:
            await provider.close()

    first, again, running, done, cancelled = _run(scenario())
    assert first.status == "queued" and again.provider_job_id == first.provider_job_id
    assert len(remote.jobs) == 1
    assert (running.status, running.details["progress"]) == ("running", 0.5)
    assert (done.status, done.details["output"]) == ("completed", "s3://x")
    assert cancelled.status == "cancelled"
    posted = remote.requests[0]
    assert posted.headers["idempotency-key"] == "job-1:1"
    assert posted.headers["authorization"] == "Bearer secret"
    assert posted.headers["x-correlation-id"] == "corr-42"
    assert posted.body["payload"] == {"frames": 3}


def test_429_and_5xx_are_retried_then_succeed(remote):
    """Two 503s and a 429 (Retry-After 0) before the answer: the call still succeeds,
    after four requests."""

    async def scenario():
        provider = HttpProvider("cloud", remote.url, max_retries=3, backoff=0)
        try:
            submitted = await provider.submit(ProviderJob("job-2", "t", {}))
            remote.fail_next(503, times=2)
            remote.fail_next(429, Retry_After="0")
            return await provider.status(submitted.provider_job_id)
        finally:
            await provider.close()

    assert _run(scenario()).status == "queued"
    assert len(remote.gets()) == 4


def test_retries_give_up_as_a_transient_error_and_4xx_is_permanent(remote):
    """Beyond max_retries: a transient ProviderError; a 404 is not retried."""

    async def scenario():
        provider = HttpProvider("cloud", remote.url, max_retries=1, backoff=0)
        try:
            remote.fail_next(503, times=2)
            with pytest.raises(ProviderError) as transient:
                await provider.status("anything")
            with pytest.raises(ProviderError) as permanent:
                await provider.status("no-such-job")
            return transient.value, permanent.value
        finally:
            await provider.close()

    transient, permanent = _run(scenario())
    assert transient.transient and "after 2 attempt(s)" in str(transient)
    assert not permanent.transient and "HTTP 404" in str(permanent)
    assert len(remote.gets()) == 3
