"""``/admin/triggers``: create, list, read, change, delete, and dry-run triggers."""

from __future__ import annotations

from typing import Any

from flask import Response, g
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, ValidationError

from app.errors import ValidationFailed
from app.ingest.dry_run import DryRunRequest, dry_run
from app.routes.admin import ADMIN_SECURITY, validation_details
from app.store import get_db
from app.store import triggers as triggers_sql
from app.triggers.schema import TriggerDocument, TriggerPatch, merge_patch, public_view
from app.wiring import execution_service, trigger_registry

bp = APIBlueprint(
    "admin_triggers",
    __name__,
    url_prefix="/admin/triggers",
    abp_tags=[Tag(name="triggers")],
    abp_security=ADMIN_SECURITY,
)


class TriggerPath(BaseModel):
    name: str = Field(max_length=64)


def _view(row: triggers_sql.TriggerRow) -> dict[str, Any]:
    document = TriggerDocument.model_validate_json(row.document)
    return {**public_view(document), "created_at": row.created_at, "updated_at": row.updated_at}


def _store_document(document: TriggerDocument) -> str:
    return document.model_dump_json()


@bp.get("", summary="List triggers")
def list_triggers() -> dict[str, Any]:
    return {"items": [_view(row) for row in triggers_sql.list_all(get_db())]}


@bp.post("", summary="Create a trigger", responses={201: None})
def create_trigger(body: TriggerDocument) -> tuple[dict[str, Any], int, dict[str, str]]:
    row = triggers_sql.insert(
        get_db(), body.name, body.description, body.enabled, _store_document(body)
    )
    return _view(row), 201, {"Location": f"/admin/triggers/{body.name}"}


@bp.get("/<name>", summary="Read a trigger (secrets are never returned)")
def get_trigger(path: TriggerPath) -> dict[str, Any]:
    return _view(triggers_sql.get(get_db(), path.name))


@bp.patch("/<name>", summary="Change a trigger; omitted fields and secrets are kept")
def patch_trigger(path: TriggerPath, body: TriggerPatch) -> dict[str, Any]:
    db = get_db()
    current = TriggerDocument.model_validate_json(triggers_sql.get(db, path.name).document)
    changes = body.model_dump()
    if changes.get("name", path.name) != path.name:
        raise ValidationFailed(
            details=[{"path": "name", "message": "a trigger cannot be renamed", "type": "value"}]
        )
    try:
        document = TriggerDocument.model_validate(merge_patch(current, changes))
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc)) from None
    row = triggers_sql.update(
        db, path.name, document.description, document.enabled, _store_document(document)
    )
    return _view(row)


@bp.delete("/<name>", summary="Delete a trigger and its dedup keys", responses={204: None})
def delete_trigger(path: TriggerPath) -> Response:
    triggers_sql.delete(get_db(), path.name)
    return Response(status=204)


@bp.post("/<name>/test", summary="Dry run: auth, filter, dedup key, rendered action")
def test_trigger(path: TriggerPath, body: DryRunRequest) -> dict[str, Any]:
    trigger = trigger_registry().get(path.name)
    return dry_run(execution_service(), trigger, body, request_id=g.get("request_id"))
