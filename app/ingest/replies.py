"""A trigger's own answers (``response``): a fixed or templated reply instead of the JSON one.

Used by the webhook route once the outcome is durably recorded (a reply never
comes before the record). Accepted and duplicate deliveries get
``response.status.success``, ``headers`` and ``body``; deliveries turned away by
the filter or the rules get ``response.mismatch`` when set, and requests whose
signature rule failed (nothing recorded) ``response.rule_error`` when set. A body is a template
over the request (``body``, ``headers``, ``query``, ``request``, ``raw_body``)
plus ``execution_id``; a template that fails to render answers with its source
left out (an empty body), never a 500. Without a body the JSON answer is kept
and only the status and headers change.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify

from app.ingest.dispatch import DispatchResult
from app.ingest.inbound import InboundRequest
from app.triggers.registry import CompiledTrigger
from app.triggers.response_schema import Reply
from app.triggers.templates import TemplateRenderError, render, template_context

log = logging.getLogger(__name__)
_TEXT = "text/plain; charset=utf-8"


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
    elif body == "none":
        response = Response(b"", mimetype=None)
        response.headers.pop("Content-Type", None)
    else:
        response = Response(_render(body, context), content_type=_TEXT)
    response.status_code = status
    for name, value in headers.items():
        response.headers[name] = _render(value, context)
    return response


def reply(
    trigger: CompiledTrigger,
    inbound: InboundRequest,
    result: DispatchResult,
    parsed_body: Any,
) -> Response | None:
    """The trigger's reply for this outcome, or None for Hookrunner's default answer."""
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
