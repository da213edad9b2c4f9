"""``/ui/deliveries``: what arrived (filters); one delivery (headers, body, report); replay."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g, redirect, render_template, url_for

from app.ingest.replay import replay as replay_delivery
from app.routes.admin.deliveries import DeliveryQuery, deliveries_page
from app.routes.ui import bp, filters
from app.routes.ui.executions import trigger_names
from app.wiring import components

FILTERS = ("trigger", "outcome", "since", "until", "cursor", "limit")
OUTCOMES = ("accepted", "duplicate", "ignored", "rejected", "handshake")


@bp.get("/deliveries")
def deliveries() -> str:
    args = filters.filter_args(FILTERS)
    page = deliveries_page(filters.parse(DeliveryQuery, args))
    return render_template(
        "deliveries.html",
        section="deliveries",
        page=page,
        args=args,
        outcomes=OUTCOMES,
        trigger_names=trigger_names(),
    )


def pretty_body(item: dict[str, Any]) -> str | None:
    """The body as indented JSON when it is JSON text, else None (shown raw)."""
    if item.get("body_encoding") != "utf-8" or not item.get("body"):
        return None
    try:
        return json.dumps(json.loads(item["body"]), indent=2, ensure_ascii=False)
    except ValueError:
        return None


@bp.get("/deliveries/<delivery_id>")
def delivery(delivery_id: str) -> str:
    history = components().history
    item = history.delivery(delivery_id)
    return render_template(
        "delivery.html",
        section="deliveries",
        item=item,
        pretty=pretty_body(item),
        replays=history.replays(delivery_id),
    )


@bp.post("/deliveries/<delivery_id>/replay")
def replay(delivery_id: str) -> Response:
    built = components()
    answer = replay_delivery(built.executions, built.triggers, delivery_id, g.get("request_id"))
    if answer.get("execution_id"):
        target = url_for("ui.execution", execution_id=answer["execution_id"])
    else:
        target = url_for("ui.delivery", delivery_id=answer.get("delivery_id") or delivery_id)
    return redirect(target, code=303)  # type: ignore[return-value]
