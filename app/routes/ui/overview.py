"""``/ui/``: the last hour and day, the queue, breakers and a chart of the daily history.

The figures are those of ``GET /admin/metrics/summary`` (:func:`app.jobs.metrics.summary`);
the chart is an SVG drawn on the server from the daily rollups (no script needed).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from flask import render_template

from app.clock import parse_iso, utc_now
from app.jobs.metrics import summary
from app.routes.ui import bp
from app.store import metrics as metrics_sql
from app.wiring import components

HISTORY_DAYS = 30
CHART_HEIGHT = 80.0
BAR_SLOT = 10
SUCCESS = ("succeeded",)


def daily_chart(daily: list[dict[str, Any]], days: int = HISTORY_DAYS) -> dict[str, Any]:
    """One slot per day up to yesterday: executions that succeeded and that did not, as SVG
    bar geometry (days without rollups stay empty)."""
    today = utc_now().date()
    slots = [(today - timedelta(days=back)).isoformat() for back in range(days, 0, -1)]
    counts: dict[str, dict[str, int]] = {day: {"ok": 0, "bad": 0, "deliveries": 0} for day in slots}
    for row in daily:
        found = counts.get(row["day"])
        if found is None:
            continue
        if row["kind"] == "execution":
            found["ok" if row["key"] in SUCCESS else "bad"] += int(row["count"])
        elif row["kind"] == "delivery":
            found["deliveries"] += int(row["count"])
    peak = max((c["ok"] + c["bad"] for c in counts.values()), default=0) or 1
    bars = []
    for index, day in enumerate(slots):
        c = counts[day]
        ok_h = round(c["ok"] / peak * CHART_HEIGHT, 2)
        bad_h = round(c["bad"] / peak * CHART_HEIGHT, 2)
        bars.append(
            {
                "day": day,
                "x": index * BAR_SLOT + 1,
                "ok_y": round(CHART_HEIGHT - ok_h, 2),
                "ok_h": ok_h,
                "bad_y": round(CHART_HEIGHT - ok_h - bad_h, 2),
                "bad_h": bad_h,
                **c,
            }
        )
    return {
        "bars": bars,
        "width": days * BAR_SLOT,
        "height": CHART_HEIGHT,
        "peak": peak,
        "empty": all(c["ok"] + c["bad"] + c["deliveries"] == 0 for c in counts.values()),
    }


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
