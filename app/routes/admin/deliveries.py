"""``/admin/deliveries``: what arrived, what became of it, and replay."""

from __future__ import annotations

from typing import Any, Literal

from flask import g
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.ingest.replay import replay
from app.routes.admin import ADMIN_SECURITY
from app.routes.admin.pagination import TimeRangeQuery, paginate
from app.wiring import components

bp = APIBlueprint(
    "admin_deliveries",
    __name__,
    url_prefix="/admin/deliveries",
    abp_tags=[Tag(name="deliveries")],
    abp_security=ADMIN_SECURITY,
)


class DeliveryQuery(TimeRangeQuery):
    outcome: Literal["accepted", "duplicate", "ignored", "rejected", "handshake"] | None = None


class DeliveryPath(BaseModel):
    delivery_id: str = Field(max_length=64)


@bp.get("", summary="List deliveries (newest first; no headers or bodies)")
def list_deliveries(query: DeliveryQuery) -> dict[str, Any]:
    return deliveries_page(query)


def deliveries_page(query: DeliveryQuery) -> dict[str, Any]:
    """One page of delivery summaries for ``query`` (the API's list, the dashboard's)."""
    since, until = query.range()
    return paginate(
        lambda after, limit: components().history.deliveries(
            trigger=query.trigger,
            outcome=query.outcome,
            since=since,
            until=until,
            after=after,
            limit=limit,
        ),
        query,
        "received_at",
    )


@bp.get("/<delivery_id>", summary="One delivery: headers (credentials redacted), body, outcome")
def get_delivery(path: DeliveryPath) -> dict[str, Any]:
    return components().history.delivery(path.delivery_id)


@bp.post("/<delivery_id>/replay", summary="Run a stored delivery again (dedup bypassed)")
def replay_delivery(path: DeliveryPath) -> tuple[dict[str, Any], int]:
    """A new delivery with ``replay_of`` set (see :mod:`app.ingest.replay`)."""
    built = components()
    return replay(built.executions, built.triggers, path.delivery_id, g.get("request_id")), 202
