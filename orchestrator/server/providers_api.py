"""``/api/cloud/providers``: each provider's network and webhook settings, and runtime
overrides of them shared by every instance (OPS §12; admin token).

* ``GET /api/cloud/providers``: every configured provider, effective settings;
* ``GET /api/cloud/providers/{name}``: one, with its overrides, ``version`` and circuit;
* ``PUT /api/cloud/providers/{name}``: a merge patch of overrides (``null`` removes one),
  checked by the same model as the YAML file; ``version`` (the one read) makes a stale
  write a 409; ``ssl_verify: false`` needs ``acknowledge_insecure: true`` (the seed's
  warning otherwise);
* ``DELETE /api/cloud/providers/{name}/overrides``: back to the file's settings.

Overrides live in ``hub_settings`` (scope ``provider:<name>``), each change audited as
``config_changed``; every instance and daemon applies them within seconds. A proxy's
credentials never appear in an answer, a log line or an audit row.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigError
from orchestrator.ops.calls import put_settings
from orchestrator.providers.calls import provider_health
from orchestrator.providers.config import INSECURE_WARNING
from orchestrator.providers.network import effective_network, redact_url, ssl_context
from orchestrator.providers.runtime import OVERRIDABLE, RuntimeProviderSettings, merged
from orchestrator.server.auditing import request_context
from orchestrator.server.auth import hub_of, require_admin
from orchestrator.server.state import HubState
from orchestrator.server.webhooks import webhook_service

router = APIRouter(
    prefix="/api/cloud/providers", tags=["providers"], dependencies=[Depends(require_admin)]
)

SECRET_KEYS = ("proxy_url",)


class ProviderPatch(BaseModel):
    """The body of ``PUT``: any overridable key (null removes the override), and more."""

    model_config = ConfigDict(extra="forbid")

    ssl_verify: bool | None = None
    acknowledge_insecure: bool = False
    ssl_ca_bundle: str | None = Field(default=None, max_length=4096)
    proxy_url: str | None = Field(default=None, max_length=2048)
    http_timeout: float | None = None
    webhook_url: str | None = Field(default=None, max_length=2048)
    webhook_allowed_ips: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=1000
    )
    webhook_require_signature: bool | None = None
    webhook_secret: str | None = Field(default=None, max_length=128)
    circuit_open_after: int | None = None
    circuit_half_open_after_seconds: int | None = None
    version: int | None = Field(default=None, ge=0)


def _runtime(hub: HubState) -> RuntimeProviderSettings:
    return webhook_service(hub).runtime


def _public(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: (redact_url(v) if k in SECRET_KEYS else v) for k, v in settings.items()}


def _describe(hub: HubState, name: str, circuit: dict[str, Any] | None) -> dict[str, Any]:
    runtime = _runtime(hub)
    section = runtime.sections[name]
    effective = {key: getattr(section, key) for key in OVERRIDABLE}
    effective.update(effective_network(section, hub.settings).describe())
    if isinstance(effective.get("webhook_allowed_ips"), tuple):
        effective["webhook_allowed_ips"] = list(effective["webhook_allowed_ips"])
    try:
        effective["webhook_url_resolved"] = section.resolved_webhook_url(
            name, hub.settings.public_url
        )
    except ValueError:
        effective["webhook_url_resolved"] = None
    return {
        "name": name,
        "type": section.type,
        "base_url": redact_url(section.base_url),
        "token_env": section.token_env,
        "effective": effective,
        "overrides": _public(runtime.overrides.get(name, {})),
        "version": runtime.versions.get(name, 0),
        "circuit": circuit or {"state": "closed", "consecutive_failures": 0},
    }


async def _fresh(request: Request, name: str | None = None) -> tuple[HubState, dict[str, Any]]:
    hub = hub_of(request)
    runtime = _runtime(hub)
    if name is not None and name not in runtime.base:
        known = ", ".join(sorted(runtime.base)) or "none configured"
        raise HTTPException(404, f"unknown provider {name[:63]!r}; configured providers: {known}")
    await runtime.refresh(hub.db, force=True)
    circuits: dict[str, Any] = await hub.db.run(provider_health())
    return hub, circuits


@router.get("")
async def list_providers(request: Request) -> list[dict[str, Any]]:
    """Every configured external provider with its effective settings."""
    hub, circuits = await _fresh(request)
    return [_describe(hub, n, circuits.get(n)) for n in sorted(_runtime(hub).base)]


@router.get("/{name}")
async def get_provider(request: Request, name: str) -> dict[str, Any]:
    """One provider: effective settings, overrides, version, circuit breaker."""
    hub, circuits = await _fresh(request, name)
    return _describe(hub, name, circuits.get(name))


def _check(hub: HubState, name: str, patch: dict[str, Any], acknowledged: bool) -> None:
    """The override as it would be stored, checked like the YAML; HTTPException 422."""
    runtime = _runtime(hub)
    combined = {**runtime.overrides.get(name, {}), **patch}
    combined = {k: v for k, v in combined.items() if v is not None}
    try:
        section = merged(runtime.base[name], combined)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "body"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise HTTPException(422, f"invalid {key}: {message}") from None
    if patch.get("ssl_verify") is False and not acknowledged:
        raise HTTPException(
            422, f"{INSECURE_WARNING} Send acknowledge_insecure: true with ssl_verify: false."
        )
    if section.ssl_ca_bundle and "ssl_ca_bundle" in patch:
        try:
            ssl_context(section.ssl_ca_bundle)
        except ConfigError as error:
            raise HTTPException(422, str(error)) from None
    try:
        section.resolved_webhook_url(name, hub.settings.public_url)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


async def _store(
    request: Request, name: str, patch: dict[str, Any], version: int | None
) -> dict[str, Any]:
    hub = hub_of(request)
    answer: dict[str, Any] = await hub.db.run(
        put_settings(
            f"provider:{name}",
            patch,
            expected_version=version,
            updated_by="admin",
            secret_keys=SECRET_KEYS,
            **request_context(request),
        )
    )
    if answer.get("conflict"):
        raise HTTPException(
            409,
            f"provider {name} settings are at version {answer['version']}, not {version}: "
            f"GET /api/cloud/providers/{name} and retry with its version",
        )
    hub, circuits = await _fresh(request, name)
    return _describe(hub, name, circuits.get(name))


@router.put("/{name}")
async def put_provider(request: Request, name: str, body: ProviderPatch) -> dict[str, Any]:
    """Stores overrides (merge; null removes); every instance applies them within seconds."""
    await _fresh(request, name)
    if "." in name:
        raise HTTPException(
            422,
            f"provider {name!r} cannot take runtime overrides: their scopes accept names of "
            "a-z, 0-9, '_' and '-' only; set these keys in the YAML file or rename the provider",
        )
    patch = {k: getattr(body, k) for k in body.model_fields_set if k in OVERRIDABLE}
    if not patch:
        raise HTTPException(
            422, f"nothing to change: send any of {', '.join(OVERRIDABLE)} (null removes one)"
        )
    if "ssl_verify" in patch and not isinstance(patch["ssl_verify"], bool | None):
        raise HTTPException(422, "ssl_verify must be true or false")
    _check(hub_of(request), name, patch, body.acknowledge_insecure)
    return await _store(request, name, patch, body.version)


@router.delete("/{name}/overrides")
async def delete_overrides(
    request: Request, name: str, version: int | None = None
) -> dict[str, Any]:
    """Removes every override: the provider is back to its file's settings."""
    await _fresh(request, name)
    current = _runtime(hub_of(request)).overrides.get(name, {})
    if not current:
        hub, circuits = await _fresh(request, name)
        return _describe(hub, name, circuits.get(name))
    return await _store(request, name, dict.fromkeys(current), version)
