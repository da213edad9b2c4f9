"""``GET /admin/metrics/summary``: the /metrics figures as JSON, with daily history."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.jobs.metrics import summary
from app.routes.admin import ADMIN_SECURITY
from app.wiring import components

bp = APIBlueprint(
    "admin_metrics",
    __name__,
    url_prefix="/admin/metrics",
    abp_tags=[Tag(name="metrics")],
    abp_security=ADMIN_SECURITY,
)


class SummaryQuery(BaseModel):
    days: int = Field(30, ge=1, le=3650, description="Days of daily history")


@bp.get("/summary", summary="Deliveries, executions, queue and breakers; daily history")
def get_summary(query: SummaryQuery) -> dict[str, Any]:
    return summary(components().store, history_days=query.days)
