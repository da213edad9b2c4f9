"""``/admin/executions``: list, inspect, follow, cancel and re-run executions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Literal

import sentry_sdk
from flask import Response, g, request, stream_with_context
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from app.context import request_id_var
from app.errors import NotFound
from app.live.notifier import ALL, notifier
from app.live.streams import execution_stream, status_feed
from app.routes.admin import ADMIN_SECURITY
from app.routes.admin.pagination import TimeRangeQuery, paginate
from app.store import deliveries as deliveries_sql
from app.store import execution_logs, get_db
from app.store import execution_queue as queue
from app.store import executions as executions_sql
from app.wiring import execution_service

log = logging.getLogger(__name__)

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
    """The report joins the ingest stages (from the delivery) and the run's own."""
    db = get_db()
    execution = executions_sql.get(db, path.execution_id)
    ingest = deliveries_sql.report(db, execution["delivery_id"]) if execution["delivery_id"] else {}
    execution["report"] = {**ingest, **execution["report"]}
    return execution


class LogQuery(BaseModel):
    after: int = Field(0, ge=0, description="Only lines with a greater seq")
    limit: int = Field(1000, ge=1, le=5000)


class StreamQuery(BaseModel):
    after: int | None = Field(None, ge=0, description="Resume after this seq (or Last-Event-ID)")


def _streamed(events: Iterator[str]) -> Iterator[str]:
    """Run a stream under its request id; end it with an ERROR line if it fails.

    The body of a streamed response runs after the request's teardown reset the
    id (and after its Sentry isolation scope ended), so both are set up again. A
    failure mid-way is logged - and so sent to Sentry - with that id; the client
    sees the stream end and reconnects with ``Last-Event-ID``.
    """
    token = request_id_var.set(g.get("request_id"))
    try:
        with sentry_sdk.isolation_scope():
            yield from events
    except Exception:
        log.exception("event stream failed")
    finally:
        request_id_var.reset(token)


def _event_stream(events: Iterator[str]) -> Response:
    return Response(
        stream_with_context(_streamed(events)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@bp.get("/<execution_id>/logs", summary="Output lines after a seq, in order")
def get_logs(path: ExecutionPath, query: LogQuery) -> dict[str, Any]:
    db = get_db()
    status = queue.status_of(db, path.execution_id)
    if status is None:
        raise NotFound(f"no execution with id {path.execution_id!r}")
    lines = execution_logs.after(db, path.execution_id, query.after, query.limit)
    return {
        "status": status,
        "items": lines,
        "last_seq": lines[-1]["seq"] if lines else query.after,
    }


@bp.get("/<execution_id>/stream", summary="Live output over Server-Sent Events")
def stream(path: ExecutionPath, query: StreamQuery) -> Response:
    db = get_db()
    if queue.status_of(db, path.execution_id) is None:
        raise NotFound(f"no execution with id {path.execution_id!r}")
    last_event_id = request.headers.get("Last-Event-ID", "")
    after = (
        query.after
        if query.after is not None
        else (int(last_event_id) if last_event_id.isdigit() else 0)
    )
    return _event_stream(execution_stream(db, path.execution_id, after))


@bp.post(
    "/<execution_id>/cancel", summary="Cancel a queued or running execution", responses={202: None}
)
def cancel(path: ExecutionPath) -> tuple[dict[str, Any], int]:
    previous = queue.request_cancel(get_db(), path.execution_id)
    engine = execution_service().engine
    if previous == "running" and engine is not None:
        engine.cancel_local(path.execution_id)
    notifier.notify(ALL)
    state = "cancelled" if previous == "queued" else "cancelling"
    return {"id": path.execution_id, "status": state}, 202


@bp.post("/<execution_id>/rerun", summary="Run the same delivery again", responses={202: None})
def rerun(path: ExecutionPath) -> tuple[dict[str, Any], int]:
    new_id = execution_service().rerun(path.execution_id, g.get("request_id"))
    return {
        "execution_id": new_id,
        "rerun_of": path.execution_id,
        "stream_url": f"/admin/executions/{new_id}/stream",
    }, 202


feed = APIBlueprint(
    "admin_stream",
    __name__,
    url_prefix="/admin/stream",
    abp_tags=[Tag(name="executions")],
    abp_security=ADMIN_SECURITY,
)


@feed.get("", summary="Live feed of every execution's status changes (SSE)")
def status_stream() -> Response:
    return _event_stream(status_feed(get_db(), request.headers.get("Last-Event-ID")))
