"""``/ui/dedup-keys``: the remembered keys (per trigger), and forgetting one."""

from __future__ import annotations

from flask import Response, redirect, render_template, request

from app.errors import ValidationFailed
from app.routes.admin.dedup_keys import DedupKeyQuery
from app.routes.admin.pagination import paginate
from app.routes.ui import bp, filters, page_url
from app.routes.ui.executions import trigger_names
from app.wiring import components

FILTERS = ("trigger", "cursor", "limit")


@bp.get("/dedup-keys")
def dedup_keys() -> str:
    args = filters.filter_args(FILTERS)
    query = filters.parse(DedupKeyQuery, args)
    page = paginate(
        lambda after, limit: components().history.dedup_keys(query.trigger, after, limit),
        query,
        "created_at",
        "key",
    )
    return render_template(
        "dedup_keys.html",
        section="dedup",
        page=page,
        args=args,
        trigger_names=trigger_names(),
    )


@bp.post("/dedup-keys/forget")
def forget_key() -> Response:
    trigger, key = request.form.get("trigger", ""), request.form.get("key", "")
    if not trigger or not key:
        raise ValidationFailed("Both the trigger and the key are needed.")
    components().history.forget_key(trigger, key)
    back = {"trigger": request.form.get("filter_trigger", "")}
    return redirect(page_url("ui.dedup_keys", back), code=303)  # type: ignore[return-value]
