"""``POST /api/webhooks/{provider}``: a provider tells the hub what became of a job.

Checks, in this order (OPS §11), each refusal one line and, where it is a security
event, one ``webhook_rejected`` audit row (throttled per provider, reason and client):
provider configured (404) -> client address in ``webhook_allowed_ips`` (403; unset or
empty accepts all) -> body at most 10 MiB, read in bounded chunks (413) -> Standard
Webhooks signature against any of the provider's secrets (401) -> JSON object with a
known status (422) -> ``func_record_webhook``, which records the delivery and applies the
status in one transaction, so a replay, or the same delivery at two instances at once,
is applied once. Nothing but the audit row is written for a refused request.

The body is the hub's provider protocol, the object ``GET {base_url}/jobs/{id}`` answers:
``{"id": <provider job id>, "status": <status or synonym>, "job_id": <hub job id>?, ...}``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from prometheus_client import Counter
from starlette.requests import ClientDisconnect

from orchestrator.providers.base import ProviderError
from orchestrator.providers.calls import record_webhook
from orchestrator.providers.config import ProviderSection
from orchestrator.providers.http import normalise_status
from orchestrator.providers.runtime import RuntimeProviderSettings
from orchestrator.providers.signatures import secret_value, signers, verify
from orchestrator.server.auditing import append_event
from orchestrator.server.auth import hub_of
from orchestrator.server.clientaddr import client_address
from orchestrator.server.state import HubState

logger = logging.getLogger("orchestrator.server.webhooks")

router = APIRouter(tags=["webhooks"])

MAX_BODY = 10 * 1024 * 1024
REJECT_WINDOW = 60
NOT_ALLOWED = "IP address not in allowlist"


class WebhookService:
    """Per app: the providers' effective settings (overrides refreshed every 2 s) and the
    ``orchestrator_webhooks_total`` counter."""

    def __init__(self, hub: HubState) -> None:
        self.hub = hub
        self.runtime = RuntimeProviderSettings(hub.config.providers, hub.settings)
        self.counter = Counter(
            "orchestrator_webhooks",
            "Provider webhook deliveries by provider and outcome (received, duplicate, "
            "ignored, rejected_ip, rejected_signature, malformed, too_large).",
            ["provider", "outcome"],
            registry=None,
        )

    async def section(self, name: str) -> ProviderSection | None:
        """The provider's effective settings, or None when it is not configured."""
        if name not in self.runtime.base:
            return None
        await self.runtime.refresh(self.hub.db)
        return self.runtime.sections.get(name)

    def count(self, provider: str, outcome: str) -> None:
        """One delivery's outcome."""
        self.counter.labels(provider, outcome).inc()


def webhook_service(hub: HubState) -> WebhookService:
    """The app's service, created on first use."""
    found = hub.services.get("webhooks")
    if not isinstance(found, WebhookService):
        found = hub.services["webhooks"] = WebhookService(hub)
    return found


async def _reject(
    request: Request, provider: str, status: int, reason: str, detail: str, **extra: Any
) -> HTTPException:
    ip = client_address(request)
    await append_event(
        request,
        "webhook_rejected",
        "receive",
        target_type="provider",
        target_id=provider[:63],
        details={"reason": reason, "detail": detail, **extra},
        # an unknown name is the client's choice: one row per client a minute, whatever it sends
        throttle_key=f"{'*' if reason == 'unknown_provider' else provider[:63]}|{reason}|{ip}",
        throttle_seconds=REJECT_WINDOW,
    )
    logger.warning("Webhook for %s from %s refused (%s): %s", provider[:63], ip, reason, detail)
    return HTTPException(status, detail)


def _allowed(ip: str | None, section: ProviderSection) -> bool:
    networks = section.allowed_networks()
    if not networks:
        return True
    if ip is None:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None as soon as it exceeds :data:`MAX_BODY` (never buffered whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected before sending the whole body") from None
    return b"".join(chunks)


def _parse(body: bytes) -> tuple[dict[str, Any], str]:
    """The payload and its hub status; ValueError with one line."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("the webhook body is not valid JSON; expected a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"the webhook body is a JSON {type(data).__name__}; expected an object with "
            '"id" and/or "job_id" and "status"'
        )
    if data.get("id") is None and data.get("job_id") is None:
        raise ValueError(
            'the webhook names no job: send "id" (the provider\'s job id) and/or "job_id"'
        )
    for key in ("id", "job_id"):
        if data.get(key) is not None and not isinstance(data[key], str | int):
            raise ValueError(f'"{key}" must be a string, got a JSON {type(data[key]).__name__}')
        if "\x00" in str(data.get(key) or ""):
            raise ValueError(f'"{key}" holds a NUL character; expected printable text')
    try:
        status = normalise_status(data.get("status"))
    except ProviderError as error:
        raise ValueError(f"unknown status: {str(error).split('; ', 1)[-1]}") from None
    return data, status


@router.post("/api/webhooks/{provider}")
async def receive(request: Request, provider: str) -> dict[str, Any]:
    """Receives one provider webhook (see the module docstring)."""
    hub = hub_of(request)
    service = webhook_service(hub)
    section = await service.section(provider)
    if section is None:
        known = ", ".join(sorted(service.runtime.base)) or "none configured"
        raise await _reject(
            request,
            provider,
            404,
            "unknown_provider",
            f"unknown provider {provider[:63]!r}; configured providers: {known}",
        )
    if not _allowed(client_address(request), section):
        service.count(provider, "rejected_ip")
        raise await _reject(request, provider, 403, "ip_not_allowed", NOT_ALLOWED)
    body = await _read_body(request)
    if body is None:
        service.count(provider, "too_large")
        raise HTTPException(413, f"webhook body too large: at most {MAX_BODY} bytes are accepted")
    headers = {k.lower(): v for k, v in request.headers.items()}
    if section.webhook_require_signature:
        verdict = verify(body, headers, signers(secret_value(hub.secret_store, provider, section)))
        if not verdict.ok:
            service.count(provider, "rejected_signature")
            raise await _reject(request, provider, 401, verdict.reason, verdict.detail)
    try:
        data, status = _parse(body)
    except ValueError as error:
        service.count(provider, "malformed")
        raise await _reject(request, provider, 422, "malformed", str(error)) from None
    delivery = headers.get("webhook-id") or hashlib.sha256(body).hexdigest()
    if len(delivery) > 255 or "\x00" in delivery:
        raise HTTPException(422, "webhook-id is too long or holds a NUL: at most 255 characters")
    details = {k: v for k, v in data.items() if k not in ("id", "status", "job_id")}
    answer: dict[str, Any] = await hub.db.run(
        record_webhook(
            provider,
            delivery,
            provider_job_id=None if data.get("id") is None else str(data["id"]),
            job_id=None if data.get("job_id") is None else str(data["job_id"]),
            status=status,
            details=details,
            payload_sha256=hashlib.sha256(body).hexdigest(),
        )
    )
    outcome = str(answer.get("outcome"))
    service.count(provider, {"applied": "received", "unchanged": "received"}.get(outcome, outcome))
    if outcome in ("applied", "unchanged"):
        logger.info(
            "Webhook %s: job %s is %s at %s", delivery, answer.get("job_id"), status, provider
        )
    # "status" is the delivery's outcome (OPS §11); the job's own status is job_status.
    result: dict[str, Any] = {"status": outcome}
    for key, value in answer.items():
        if key != "outcome":
            result["job_status" if key == "status" else key] = value
    return result
