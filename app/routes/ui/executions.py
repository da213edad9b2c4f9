"""``/ui/executions``: the list (live statuses), one execution with its output, cancel, rerun.

The output pane and the list's live statuses use the browser's ``EventSource``
on ``/ui/executions/<id>/stream`` and ``/ui/stream``: the same streams as the
admin API's (:mod:`app.live.streams`), authenticated by the session cookie.
``Last-Event-ID`` wins over ``?after=`` here, so the browser's automatic
reconnection resumes after the last line it received rather than the first
page's position.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from flask import Response, g, redirect, render_template, request, url_for

from app.clock import ms_between, utc_now_iso
from app.routes.admin.executions import ExecutionQuery, event_stream, executions_page
from app.routes.ui import bp, filters
from app.store.executions import FINAL_STATUSES, STATUSES
from app.ui import sessions
from app.wiring import components

FILTERS = ("trigger", "status", "since", "until", "cursor", "limit")
STORED_LINES = 5000
SESSION_RECHECK_SECONDS = 30.0


def trigger_names() -> list[str]:
    return [item["name"] for item in components().trigger_admin.list()]


@bp.get("/executions")
def executions() -> str:
    args = filters.filter_args(FILTERS)
    page = executions_page(filters.parse(ExecutionQuery, args))
    return render_template(
        "executions.html",
        section="executions",
        page=page,
        args=args,
        statuses=STATUSES,
        trigger_names=trigger_names(),
    )


def timeline(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's stage timings as consecutive bars (label, position and length in %).

    Until the run has reported them, the wait and the run so far are measured from the
    execution's own timestamps.
    """
    report = item["report"]
    queued = report.get("queue_wait_ms")
    if queued is None:
        queued = ms_between(item["created_at"], item["started_at"])
    run, run_label = report.get("duration_ms"), "Run"
    if run is None and item["started_at"] and item["status"] == "running":
        run, run_label = ms_between(item["started_at"], utc_now_iso()), "Run (so far)"
    stages = [("Ingest", report.get("evaluated_ms")), ("Queued", queued), (run_label, run)]
    timed = [(label, float(ms)) for label, ms in stages if isinstance(ms, int | float)]
    total = sum(ms for _, ms in timed) or 1.0
    bars: list[dict[str, Any]] = []
    start = 0.0
    for label, ms in timed:
        bars.append(
            {
                "label": label,
                "ms": ms,
                "x": round(start / total * 100, 3),
                "width": max(round(ms / total * 100, 3), 0.5),
            }
        )
        start += ms
    return bars


@bp.get("/executions/<execution_id>")
def execution(execution_id: str) -> str:
    control = components().control
    item = control.get(execution_id)
    logs = control.logs(execution_id, 0, STORED_LINES)
    return render_template(
        "execution.html",
        section="executions",
        item=item,
        report=item["report"],
        lines=logs["items"],
        last_seq=logs["last_seq"],
        final=item["status"] in FINAL_STATUSES,
        timeline=timeline(item),
        follow_ups=control.follow_ups(execution_id),
    )


@bp.get("/executions/<execution_id>/stream")
def execution_stream(execution_id: str) -> Response:
    built = components()
    built.control.require(execution_id)
    last_event_id = request.headers.get("Last-Event-ID", "")
    after_arg = request.args.get("after", "")
    if last_event_id.isdigit():
        after = int(last_event_id)
    else:
        after = int(after_arg) if after_arg.isdigit() else 0
    return event_stream(signed_in(built.streams.execution(execution_id, after)))


@bp.get("/stream")
def status_stream() -> Response:
    feed = components().streams.status_feed(request.headers.get("Last-Event-ID"))
    return event_stream(signed_in(feed))


def signed_in(events: Iterator[str]) -> Iterator[str]:
    """``events`` while the session stays valid: re-checked every
    :data:`SESSION_RECHECK_SECONDS` (streams send a keepalive at least every 15 s), so a
    revoked token or an expired session also ends the streams it opened."""
    cookie = request.cookies.get(sessions.COOKIE)
    signer = sessions.signer()
    checked = time.monotonic()
    for chunk in events:
        yield chunk
        if time.monotonic() - checked >= SESSION_RECHECK_SECONDS:
            if signer.load(cookie) is None:
                return
            checked = time.monotonic()


@bp.post("/executions/<execution_id>/cancel")
def cancel(execution_id: str) -> Response:
    components().control.cancel(execution_id)
    return redirect(url_for("ui.execution", execution_id=execution_id), code=303)  # type: ignore[return-value]


@bp.post("/executions/<execution_id>/rerun")
def rerun(execution_id: str) -> Response:
    answer = components().control.rerun(execution_id, g.get("request_id"))
    return redirect(url_for("ui.execution", execution_id=answer["execution_id"]), code=303)  # type: ignore[return-value]
