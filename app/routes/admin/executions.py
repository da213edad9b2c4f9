"""``/admin/executions``: list and inspect executions (no logs in lists)."""

from __future__ import annotations

from typing import Any, Literal

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.db import executions as executions_sql
from app.db import get_db
from app.routes.admin import ADMIN_SECURITY
from app.routes.admin.pagination import TimeRangeQuery, paginate

bp = APIBlueprint(
    "admin_executions",
    __name__,
    url_prefix="/admin/executions",
    abp_tags=[Tag(name="executions")],
    abp_security=ADMIN_SECURITY,
)

Status = Literal[
    "queued", "running", "succeeded", "failed", "timed_out", "cancelled", "interrupted"
]


class ExecutionQuery(TimeRangeQuery):
    status: Status | None = None


class ExecutionPath(BaseModel):
    execution_id: str = Field(max_length=64)


@bp.get("", summary="List executions (newest first; no logs)")
def list_executions(query: ExecutionQuery) -> dict[str, Any]:
    since, until = query.range()
    return paginate(
        lambda after, limit: executions_sql.list_recent(
            get_db(),
            trigger=query.trigger,
            status=query.status,
            since=since,
            until=until,
            after=after,
            limit=limit,
        ),
        query,
        "created_at",
    )


@bp.get("/<execution_id>", summary="One execution with its processing report")
def get_execution(path: ExecutionPath) -> dict[str, Any]:
    return executions_sql.get(get_db(), path.execution_id)
