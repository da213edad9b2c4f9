"""``/admin/dedup-keys``: see which keys are remembered, and forget one to force a re-run."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.errors import NotFound
from app.routes.admin import ADMIN_SECURITY
from app.routes.admin.pagination import PageQuery, paginate
from app.store import dedup_keys, get_db

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
        lambda after, limit: [
            asdict(row)
            for row in dedup_keys.list_for_trigger(
                get_db(), query.trigger, after=after, limit=limit
            )
        ],
        query,
        "created_at",
        "key",
    )


@bp.delete(
    "", summary="Forget one key: the next identical delivery runs again", responses={204: None}
)
def delete_key(query: DedupKeyDelete) -> Response:
    if not dedup_keys.delete(get_db(), query.trigger, query.key):
        raise NotFound("no such dedup key")
    return Response(status=204)
