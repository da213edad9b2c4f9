"""``/admin/triggers``: create, list, read, change, delete, and dry-run triggers."""

from __future__ import annotations

from typing import Any

from flask import Response, g
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.ingest.dry_run import DryRunRequest, dry_run
from app.routes.admin import ADMIN_SECURITY
from app.store import refusals as refusals_sql
from app.triggers.schema import TriggerDocument, TriggerPatch
from app.wiring import components, execution_service, trigger_registry

bp = APIBlueprint(
    "admin_triggers",
    __name__,
    url_prefix="/admin/triggers",
    abp_tags=[Tag(name="triggers")],
    abp_security=ADMIN_SECURITY,
)


class TriggerPath(BaseModel):
    name: str = Field(max_length=64)


@bp.get("", summary="List triggers")
def list_triggers() -> dict[str, Any]:
    return {"items": components().trigger_admin.list()}


@bp.post("", summary="Create a trigger", responses={201: None})
def create_trigger(body: TriggerDocument) -> tuple[dict[str, Any], int, dict[str, str]]:
    created = components().trigger_admin.create(body)
    return created, 201, {"Location": f"/admin/triggers/{body.name}"}


@bp.get("/<name>", summary="Read a trigger (secrets are never returned)")
def get_trigger(path: TriggerPath) -> dict[str, Any]:
    return components().trigger_admin.get(path.name)


@bp.patch("/<name>", summary="Change a trigger; omitted fields and secrets are kept")
def patch_trigger(path: TriggerPath, body: TriggerPatch) -> dict[str, Any]:
    return components().trigger_admin.patch(path.name, body)


@bp.put(
    "/<name>",
    summary="Create or replace a trigger; secrets left out are kept",
    responses={201: None},
)
def put_trigger(
    path: TriggerPath, body: TriggerPatch
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A whole document: fields left out take their defaults (write-only secrets are kept)."""
    view, created = components().trigger_admin.replace(path.name, body.model_dump())
    headers = {"Location": f"/admin/triggers/{path.name}"} if created else {}
    return view, 201 if created else 200, headers


@bp.delete("/<name>", summary="Delete a trigger and its dedup keys", responses={204: None})
def delete_trigger(path: TriggerPath) -> Response:
    components().trigger_admin.delete(path.name)
    return Response(status=204)


class RefusalQuery(BaseModel):
    limit: int = Field(50, ge=1, le=50)


@bp.get(
    "/<name>/recent-refusals",
    summary="The last refused requests to this name (no bodies, no signatures)",
)
def recent_refusals(path: TriggerPath, query: RefusalQuery) -> dict[str, Any]:
    """Answers for any valid name, even one no trigger has: a sender's typo shows up here."""
    rows = refusals_sql.recent(components().store, path.name, query.limit)
    return {"trigger": path.name, "items": [row.api_view() for row in rows]}


@bp.post("/<name>/test", summary="Dry run: auth, filter, dedup key, rendered action")
def test_trigger(path: TriggerPath, body: DryRunRequest) -> dict[str, Any]:
    trigger = trigger_registry().get(path.name)
    return dry_run(execution_service(), trigger, body, request_id=g.get("request_id"))
