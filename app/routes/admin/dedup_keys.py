"""``/admin/dedup-keys``: see which keys are remembered, and forget one to force a re-run."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.routes.admin import ADMIN_SECURITY
from app.routes.admin.pagination import PageQuery, paginate
from app.wiring import components

bp = APIBlueprint(
    "admin_dedup_keys",
    __name__,
    url_prefix="/admin/dedup-keys",
    abp_tags=[Tag(name="dedup")],
    abp_security=ADMIN_SECURITY,
)


class DedupKeyQuery(PageQuery):
    trigger: str | None = None


class DedupKeyDelete(BaseModel):
    trigger: str = Field(min_length=1)
    key: str = Field(min_length=1)


@bp.get("", summary="Live dedup keys, newest first")
def list_keys(query: DedupKeyQuery) -> dict[str, Any]:
    return paginate(
        lambda after, limit: components().history.dedup_keys(query.trigger, after, limit),
        query,
        "created_at",
        "key",
    )


@bp.delete(
    "", summary="Forget one key: the next identical delivery runs again", responses={204: None}
)
def delete_key(query: DedupKeyDelete) -> Response:
    components().history.forget_key(query.trigger, query.key)
    return Response(status=204)
