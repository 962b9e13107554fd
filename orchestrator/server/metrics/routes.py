"""The scrape endpoints and the admin config API (the seed's paths and bodies).

* ``GET /metrics`` and ``GET /api/cloud/metrics/prometheus``: the exposition of the
  enabled categories (Prometheus text 0.0.4, or OpenMetrics when ``Accept`` asks);
  **404** when the export is disabled (the seed answered 200 with a comment, so
  Prometheus saw a healthy target with no data).
* ``GET/PUT /api/cloud/metrics/config``, ``GET .../categories``, ``GET .../templates``,
  ``POST .../templates/{name}``, ``GET .../preview?categories=...`` (admin).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.server.auditing import request_context
from orchestrator.server.auth import hub_of, require_admin
from orchestrator.server.metrics.categories import (
    CATEGORIES,
    TEMPLATE_DESCRIPTIONS,
    TEMPLATES,
    accepted_line,
    unknown_categories,
)
from orchestrator.server.metrics.collectors import Families, process_metrics
from orchestrator.server.metrics.config import config_store, from_stored
from orchestrator.server.state import HubState

router = APIRouter(tags=["metrics"])
admin = APIRouter(
    prefix="/api/cloud/metrics/config", tags=["metrics"], dependencies=[Depends(require_admin)]
)

DISABLED = "Prometheus export is disabled; enable it with PUT /api/cloud/metrics/config"


class ConfigPatch(BaseModel):
    """``PUT /api/cloud/metrics/config``: any of the two settings, and the version read."""

    model_config = ConfigDict(extra="forbid")

    prometheus_enabled: bool | None = None
    prometheus_categories: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=64
    )
    version: int | None = Field(default=None, ge=0)


class TemplateApply(BaseModel):
    """``POST .../templates/{name}``: optionally the version read."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=0)


async def exposition(request: Request, hub: HubState, categories: list[str]) -> Response:
    """The exposition of ``categories`` in the format the client accepts."""
    families: Families = await process_metrics(hub).scrape(hub, categories)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(families), media_type=content_type)


@router.get("/metrics")
@router.get("/api/cloud/metrics/prometheus")
async def scrape(request: Request) -> Response:
    """The Prometheus scrape of the stored categories (404 when disabled)."""
    hub = hub_of(request)
    config = await config_store(hub).current()
    if not config.enabled:
        raise HTTPException(404, DISABLED)
    return await exposition(request, hub, list(config.categories))


@admin.get("")
async def get_config(request: Request) -> dict[str, Any]:
    """The stored config (read from the database, not the scrape cache)."""
    return (await config_store(hub_of(request)).fresh()).as_json()


async def _store(request: Request, patch: dict[str, Any], version: int | None) -> dict[str, Any]:
    hub = hub_of(request)
    answer = await config_store(hub).put(
        patch, version, updated_by="admin", **request_context(request)
    )
    if answer.get("conflict"):
        raise HTTPException(
            409,
            f"metrics config is at version {answer['version']}, not {version}: "
            "GET /api/cloud/metrics/config and retry with its version",
        )
    stored = {"metrics": {"settings": answer["settings"], "version": answer["version"]}}
    return from_stored(stored).as_json()


@admin.put("")
async def put_config(request: Request, body: ConfigPatch) -> dict[str, Any]:
    """Changes the export (shared by every instance; audited as config_changed)."""
    patch: dict[str, Any] = {}
    if body.prometheus_enabled is not None:
        patch["prometheus_enabled"] = body.prometheus_enabled
    if body.prometheus_categories is not None:
        unknown = unknown_categories(body.prometheus_categories)
        if unknown:
            raise HTTPException(
                422, f"unknown metrics category {unknown[0]!r}; accepted: {accepted_line()}"
            )
        patch["prometheus_categories"] = list(dict.fromkeys(body.prometheus_categories))
    if not patch:
        raise HTTPException(
            422, "nothing to change: send prometheus_enabled and/or prometheus_categories"
        )
    return await _store(request, patch, body.version)


@admin.get("/categories")
async def categories() -> list[dict[str, object]]:
    """Every category with the metrics it exports."""
    return [c.as_json() for c in CATEGORIES.values()]


@admin.get("/templates")
async def templates() -> list[dict[str, object]]:
    """The four templates and their categories."""
    return [
        {
            "id": name,
            "name": name.title(),
            "description": TEMPLATE_DESCRIPTIONS[name],
            "categories": list(cats),
        }
        for name, cats in TEMPLATES.items()
    ]


@admin.post("/templates/{name}")
async def apply_template(
    request: Request, name: str, body: TemplateApply | None = None
) -> dict[str, Any]:
    """Sets the categories to the template's."""
    if name not in TEMPLATES:
        raise HTTPException(
            404, f"unknown template {name[:64]!r}; accepted: {', '.join(TEMPLATES)}"
        )
    version = body.version if body is not None else None
    return await _store(request, {"prometheus_categories": list(TEMPLATES[name])}, version)


@admin.get("/preview")
async def preview(
    request: Request, categories: Annotated[list[str] | None, Query(max_length=64)] = None
) -> Response:
    """The exposition of the given categories; the stored config is not changed."""
    if not categories:
        raise HTTPException(
            422, f"give at least one categories= parameter; accepted: {accepted_line()}"
        )
    unknown = unknown_categories(categories)
    if unknown:
        raise HTTPException(
            422, f"unknown metrics category {unknown[0][:64]!r}; accepted: {accepted_line()}"
        )
    return await exposition(request, hub_of(request), list(dict.fromkeys(categories)))


router.include_router(admin)
