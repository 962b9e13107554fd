"""``HttpProvider``: an external REST provider (a cloud GPU API) driven by the daemon.

The API it speaks, small enough for a provider to offer or for an adapter to wrap:

* ``POST {base_url}/jobs`` with ``{job_id, job_type, payload, user_id, priority}`` (plus
  ``upload``: ``{endpoint_url, access_key_id, secret_access_key, region, bucket, prefix,
  expires_at}`` when the hub has a public URL for its S3 endpoint) and an
  ``Idempotency-Key`` header (the hub's job id and attempt, so a retried submit after a
  lost reply does not start the job twice) -> ``{"id": ..., "status": ...}``;
* ``GET {base_url}/jobs/{id}`` -> ``{"id", "status", ...}`` (other keys become details);
* ``POST {base_url}/jobs/{id}/cancel`` -> ``{"id", "status"}``.

Statuses are the hub's (pending, uploading, queued, running, completed, failed,
cancelled) or common synonyms (starting, processing, succeeded, error, canceled).
Requests go through the hub's correlation-id client (every request carries the
caller's ``X-Correlation-ID``); 429, 5xx and transport errors are retried with
exponential backoff and jitter, honouring ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

# httpx here is a client of the providers' own APIs, not of our database: the one
# place besides logs/http.py outside orchestrator/db/ that may import it
# (tests/unit/test_one_home_rules.py).
import httpx

from orchestrator.config import Settings, get_settings
from orchestrator.errors import ConfigError
from orchestrator.logs.http import get_async_client
from orchestrator.providers.base import JobStatus, ProviderError, ProviderJob, RemoteStatus
from orchestrator.providers.network import NetworkSettings, client_options, effective_network

if TYPE_CHECKING:
    from orchestrator.providers.config import ProviderSection

SYNONYMS: dict[str, JobStatus] = {
    "pending": "pending",
    "uploading": "uploading",
    "queued": "queued",
    "starting": "queued",
    "running": "running",
    "processing": "running",
    "completed": "completed",
    "succeeded": "completed",
    "success": "completed",
    "failed": "failed",
    "error": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
logger = logging.getLogger("orchestrator.providers.http")
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def normalise_status(raw: Any) -> JobStatus:
    """The hub's word for a provider's status, or a ProviderError naming what is known."""
    status = SYNONYMS.get(str(raw).strip().lower()) if raw is not None else None
    if status is None:
        raise ProviderError(
            f"provider answered an unknown status {raw!r}; expected one of "
            + ", ".join(sorted(SYNONYMS))
        )
    return status


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None


class HttpProvider:
    """A REST provider client; one pooled async client shared by all calls."""

    dispatched_by_daemon = True

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        webhook_url: str | None = None,
        token: str | None = None,
        timeout: float = 30,
        max_retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        network: NetworkSettings | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.webhook_url = webhook_url
        self.max_retries = max_retries
        self.backoff = backoff
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._transport = transport
        self.network = network or NetworkSettings(timeout=timeout)
        self._client = self._build_client(self.network)
        self._retired: list[httpx.AsyncClient] = []

    def _build_client(self, network: NetworkSettings) -> httpx.AsyncClient:
        return get_async_client(
            base_url=self.base_url,
            headers=self._headers,
            **client_options(self.name, network, self._transport),
        )

    @classmethod
    def from_config(
        cls, name: str, section: ProviderSection, settings: Settings | None = None
    ) -> HttpProvider:
        """From a ``providers.<name>`` section of the daemon's config file (``webhook_url:
        auto`` resolved against ``ORCHESTRATOR_PUBLIC_URL``; a ConfigError line else)."""
        settings = settings or get_settings()
        token = os.environ.get(section.token_env) if section.token_env else None
        try:
            webhook_url = section.resolved_webhook_url(name, settings.public_url)
        except ValueError as error:
            raise ConfigError(f"invalid config: {error}") from None
        return cls(
            name,
            section.base_url,
            webhook_url=webhook_url,
            token=token,
            max_retries=section.max_retries,
            network=effective_network(section, settings),
        )

    def reconfigure(self, network: NetworkSettings) -> bool:
        """Uses ``network`` from the next request on (runtime overrides); True when the
        client was rebuilt. Requests in flight finish on the old client, closed later."""
        if network == self.network:
            return False
        client = self._build_client(network)  # a bad CA bundle raises before any change
        self._retired.append(self._client)
        self._client, self.network = client, network
        logger.info("Provider %s: network settings changed (%s)", self.name, network.describe())
        return True

    async def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **headers: str
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            failure: str
            delay: float | None = None
            try:
                response = await self._client.request(method, path, json=body, headers=headers)
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 400:
                    data = response.json()
                    if not isinstance(data, dict):
                        raise ProviderError(f"{self.name}: {method} {path} answered non-object")
                    return data
                failure = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE:
                    raise ProviderError(f"{self.name}: {method} {path} failed with {failure}")
                delay = _retry_after(response)
            if attempt >= self.max_retries:
                raise ProviderError(
                    f"{self.name}: {method} {path} failed after {attempt + 1} attempt(s): "
                    f"{failure}",
                    transient=True,
                )
            pause = self.backoff * 2**attempt * random.uniform(0.5, 1.0)  # noqa: S311
            await asyncio.sleep(max(pause, delay or 0.0))
            attempt += 1

    def _remote(self, data: Mapping[str, Any], fallback_id: str | None = None) -> RemoteStatus:
        provider_job_id = data.get("id", fallback_id)
        if not provider_job_id:
            raise ProviderError(f"{self.name}: the answer carries no job id: {dict(data)!r}")
        details = {k: v for k, v in data.items() if k not in ("id", "status")}
        return RemoteStatus(str(provider_job_id), normalise_status(data.get("status")), details)

    async def submit(self, job: ProviderJob) -> RemoteStatus:
        """``POST /jobs``; the idempotency key makes a retried submit harmless."""
        body = {
            "job_id": job.job_id,
            "job_type": job.job_type,
            "payload": dict(job.payload),
            "user_id": job.user_id,
            "priority": job.priority,
        }
        if self.webhook_url:
            body["webhook_url"] = self.webhook_url
        if job.upload:  # S3 credentials valid under the job's prefix until it ends
            body["upload"] = dict(job.upload)
        data = await self._request(
            "POST", "/jobs", body, **{"Idempotency-Key": f"{job.job_id}:{job.attempt}"}
        )
        return self._remote(data)

    async def status(self, provider_job_id: str) -> RemoteStatus:
        """``GET /jobs/{id}``."""
        return self._remote(
            await self._request("GET", f"/jobs/{quote(provider_job_id, safe='')}"), provider_job_id
        )

    async def cancel(self, provider_job_id: str) -> RemoteStatus:
        """``POST /jobs/{id}/cancel``."""
        data = await self._request("POST", f"/jobs/{quote(provider_job_id, safe='')}/cancel")
        return self._remote(data, provider_job_id)

    async def close(self) -> None:
        """Closes the pooled client (and those replaced by :meth:`reconfigure`)."""
        for client in [*self._retired, self._client]:
            await client.aclose()
        self._retired.clear()
