"""A trigger's own answers (``response``): a fixed or templated reply instead of the JSON one.

Used by the webhook route once the outcome is durably recorded (a reply never
comes before the record). Accepted and duplicate deliveries get
``response.status.success``, ``headers`` and ``body``; deliveries turned away by
the filter or the rules get ``response.mismatch`` when set, and requests whose
signature rule failed (nothing recorded) ``response.rule_error`` when set. A body is a template
over the request (``body``, ``headers``, ``query``, ``request``, ``raw_body``)
plus ``execution_id``; a template that fails to render answers with its source
left out (an empty body), never a 500; so does a header template, or one that
renders to a value a header cannot carry (a line break, a control or non-ASCII
character). Without a body the JSON answer is kept and only the status and
headers change.

With ``response.mode: wait`` an accepted or duplicate delivery is answered
with its execution's result (:func:`wait_reply`): the route has already
committed the delivery, and :class:`app.ingest.waits.ResultWaiter` waits for
the execution to end. ``succeeded`` answers ``status.success`` (default 200)
with ``body``; any other final status ``status.failure`` (default 500) with
``failure_body`` (default ``body``). ``"output"`` is the program's output cut
at ``max_output_bytes`` (then ``Hookrunner-Output-Truncated: true``), and
templates also see ``output``, ``exit_code``, ``status`` and ``error``.
Without a body the JSON acknowledgement carries a ``result``. A wait that runs
out answers 202 with the plain acknowledgement (no trigger headers: they may
describe a body that is not there) while the execution goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify

from app.ingest.dispatch import DispatchResult
from app.ingest.inbound import InboundRequest
from app.ingest.waits import ResultWaiter
from app.live.streams import stream_url
from app.triggers.registry import CompiledTrigger
from app.triggers.response_schema import HEADER_VALUE, Reply, ResponseSpec
from app.triggers.templates import TemplateRenderError, render, template_context

log = logging.getLogger(__name__)
_TEXT = "text/plain; charset=utf-8"
TRUNCATED_HEADER = "Hookrunner-Output-Truncated"


def _context(
    trigger: CompiledTrigger, inbound: InboundRequest, result: DispatchResult, body: Any
) -> dict[str, Any]:
    context = template_context(
        body=body,
        headers=inbound.headers,
        query=inbound.query,
        trigger=trigger.name,
        delivery_id=result.delivery_id,
        method=inbound.method,
        remote_addr=inbound.remote_addr,
        raw_body=inbound.body,
    )
    context["execution_id"] = result.execution_id or ""
    return context


def _render(source: str, context: dict[str, Any]) -> str:
    try:
        return render(source, context)
    except TemplateRenderError as exc:
        log.warning("response template failed: %s", exc)
        return ""


def _build(
    status: int,
    headers: dict[str, str],
    body: str | None,
    context: dict[str, Any],
    fallback: dict[str, Any],
) -> Response:
    if body is None:
        response = jsonify(fallback)
    elif body == "output":
        response = Response(context.get("output", ""), content_type=_TEXT)
    elif body == "none":
        response = Response(b"", mimetype=None)
        response.headers.pop("Content-Type", None)
    else:
        response = Response(_render(body, context), content_type=_TEXT)
    response.status_code = status
    for name, value in headers.items():
        response.headers[name] = _header_value(name, value, context)
    return response


def _header_value(name: str, source: str, context: dict[str, Any]) -> str:
    """A header's rendered value; empty when it renders to what a header cannot carry
    (a line break from the payload would otherwise split the response)."""
    value = _render(source, context)
    if HEADER_VALUE.fullmatch(value):
        return value
    log.warning("response header %s rendered a value a header cannot carry; sent empty", name)
    return ""


def reply(
    trigger: CompiledTrigger,
    inbound: InboundRequest,
    result: DispatchResult,
    parsed_body: Any,
    waiter: ResultWaiter | None = None,
) -> Response | None:
    """The trigger's reply for this outcome, or None for Hookrunner's default answer.

    Call it only once the outcome is recorded: with ``mode: wait`` (and a
    ``waiter``) it waits for the execution of an accepted or duplicate delivery.
    """
    spec = trigger.document.response
    if spec is None or result.status == "handshake":
        return None
    context = _context(trigger, inbound, result, parsed_body)
    fallback = result.payload(inbound.request_id)
    if result.status == "ignored":
        mismatch: Reply | None = spec.mismatch
        if mismatch is None:
            return None
        return _build(mismatch.status, mismatch.headers, mismatch.body, context, fallback)
    if spec.mode == "wait" and waiter is not None and result.execution_id is not None:
        return wait_reply(spec, waiter, result.execution_id, context, fallback)
    return _build(spec.success_status(), spec.headers, spec.body, context, fallback)


def rule_error_reply(trigger: CompiledTrigger, inbound: InboundRequest) -> Response | None:
    """``response.rule_error`` for a request whose signature rule failed, or None.

    Nothing was recorded, so the template context has no delivery or execution id.
    """
    spec = trigger.document.response
    if spec is None or spec.rule_error is None:
        return None
    context = template_context(
        body=None,
        headers=inbound.headers,
        query=inbound.query,
        trigger=trigger.name,
        delivery_id="",
        method=inbound.method,
        remote_addr=inbound.remote_addr,
        raw_body=inbound.body,
    )
    context["execution_id"] = ""
    error = spec.rule_error
    fallback = {
        "error": {
            "code": "signature_invalid",
            "message": "The request does not satisfy the trigger's signature rule.",
            "request_id": inbound.request_id,
        }
    }
    return _build(error.status, error.headers, error.body, context, fallback)


def wait_reply(
    spec: ResponseSpec,
    waiter: ResultWaiter,
    execution_id: str,
    context: dict[str, Any],
    fallback: dict[str, Any],
) -> Response | None:
    """The answer with the execution's result, or 202 when the wait runs out.

    None (Hookrunner's default answer) when the execution is gone, say pruned
    by retention before a late duplicate arrived.
    """
    waited = waiter.wait(execution_id, spec.timeout_seconds)
    row = waited.row
    if row is None:
        return None
    if not waited.ended:
        response = jsonify({**fallback, "stream_url": stream_url(execution_id)})
        response.status_code = 202
        return response
    if waited.succeeded:
        status, body = spec.success_status(), spec.body
    else:
        status = spec.status.failure
        body = spec.failure_body if spec.failure_body is not None else spec.body
    output, truncated = ("", False)
    if (body is not None and body != "none") or spec.headers:
        output, truncated = waiter.output(execution_id, spec.max_output_bytes)
    context = {
        **context,
        "output": output,
        "exit_code": "" if row["exit_code"] is None else row["exit_code"],
        "status": row["status"],
        "error": row["error"] or "",
    }
    result = {"status": row["status"], "exit_code": row["exit_code"], "error": row["error"]}
    response = _build(status, spec.headers, body, context, {**fallback, "result": result})
    if truncated:
        response.headers[TRUNCATED_HEADER] = "true"
    return response
