"""``/ui/``: the last hour and day, the queue, breakers and a chart of the daily history.

The figures are those of ``GET /admin/metrics/summary`` (:func:`app.jobs.metrics.summary`);
the chart is an SVG drawn on the server from the daily rollups (no script needed).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import render_template

from app.clock import parse_iso, utc_now
from app.jobs.metrics import summary
from app.routes.ui import bp
from app.store import metrics as metrics_sql
from app.wiring import components

HISTORY_DAYS = 30
CHART_HEIGHT = 120.0
SUCCESS = ("succeeded",)


def daily_chart(daily: list[dict[str, Any]]) -> dict[str, Any]:
    """Per day: executions that succeeded and that did not, as SVG bar geometry."""
    days: dict[str, dict[str, int]] = defaultdict(lambda: {"ok": 0, "bad": 0, "deliveries": 0})
    for row in daily:
        if row["kind"] == "execution":
            days[row["day"]]["ok" if row["key"] in SUCCESS else "bad"] += int(row["count"])
        elif row["kind"] == "delivery":
            days[row["day"]]["deliveries"] += int(row["count"])
    ordered = sorted(days.items())
    peak = max((d["ok"] + d["bad"] for _, d in ordered), default=0) or 1
    width = 10.0
    bars = []
    for index, (day, counts) in enumerate(ordered):
        ok_h = counts["ok"] / peak * CHART_HEIGHT
        bad_h = counts["bad"] / peak * CHART_HEIGHT
        bars.append(
            {
                "day": day,
                "x": index * width + 1,
                "ok_y": CHART_HEIGHT - ok_h,
                "ok_h": ok_h,
                "bad_y": CHART_HEIGHT - ok_h - bad_h,
                "bad_h": bad_h,
                **counts,
            }
        )
    return {"bars": bars, "width": max(len(bars), 1) * width, "height": CHART_HEIGHT, "peak": peak}


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return ""
    seconds = int((utc_now() - parse_iso(timestamp)).total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


@bp.get("/")
def overview() -> str:
    db = components().store
    figures = summary(db, history_days=HISTORY_DAYS)
    queue: dict[str, dict[str, Any]] = defaultdict(dict)
    for trigger, status, count, oldest in metrics_sql.active(db):
        queue[trigger][status] = count
        if status == "queued":
            queue[trigger]["oldest_age"] = _age(oldest)
    return render_template(
        "overview.html",
        section="overview",
        figures=figures,
        queue=dict(sorted(queue.items())),
        chart=daily_chart(figures["daily"]),
        history_days=HISTORY_DAYS,
    )
