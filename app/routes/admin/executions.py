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
from app.routes.admin import ADMIN_SECURITY
from app.routes.admin.pagination import TimeRangeQuery, paginate
from app.wiring import components

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
    return executions_page(query)


def executions_page(query: ExecutionQuery) -> dict[str, Any]:
    """One page of execution summaries for ``query`` (the API's list, the dashboard's)."""
    since, until = query.range()
    return paginate(
        lambda after, limit: components().control.list(
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
    return components().control.get(path.execution_id)


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


def event_stream(events: Iterator[str]) -> Response:
    return Response(
        stream_with_context(_streamed(events)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@bp.get("/<execution_id>/logs", summary="Output lines after a seq, in order")
def get_logs(path: ExecutionPath, query: LogQuery) -> dict[str, Any]:
    return components().control.logs(path.execution_id, query.after, query.limit)


@bp.get("/<execution_id>/stream", summary="Live output over Server-Sent Events")
def stream(path: ExecutionPath, query: StreamQuery) -> Response:
    built = components()
    built.control.require(path.execution_id)
    last_event_id = request.headers.get("Last-Event-ID", "")
    after = (
        query.after
        if query.after is not None
        else (int(last_event_id) if last_event_id.isdigit() else 0)
    )
    return event_stream(built.streams.execution(path.execution_id, after))


@bp.post(
    "/<execution_id>/cancel", summary="Cancel a queued or running execution", responses={202: None}
)
def cancel(path: ExecutionPath) -> tuple[dict[str, Any], int]:
    return components().control.cancel(path.execution_id), 202


@bp.post("/<execution_id>/rerun", summary="Run the same delivery again", responses={202: None})
def rerun(path: ExecutionPath) -> tuple[dict[str, Any], int]:
    return components().control.rerun(path.execution_id, g.get("request_id")), 202


feed = APIBlueprint(
    "admin_stream",
    __name__,
    url_prefix="/admin/stream",
    abp_tags=[Tag(name="executions")],
    abp_security=ADMIN_SECURITY,
)


@feed.get("", summary="Live feed of every execution's status changes (SSE)")
def status_stream() -> Response:
    return event_stream(components().streams.status_feed(request.headers.get("Last-Event-ID")))
