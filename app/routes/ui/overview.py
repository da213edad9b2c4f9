"""``/ui/``: deliveries and executions of the last hour and day.

The figures are those of ``GET /admin/metrics/summary`` (:func:`app.jobs.metrics.summary`).
"""

from __future__ import annotations

from flask import render_template

from app.jobs.metrics import summary
from app.routes.ui import bp
from app.wiring import components


@bp.get("/")
def overview() -> str:
    figures = summary(components().store, history_days=1)
    return render_template("overview.html", section="overview", figures=figures)
