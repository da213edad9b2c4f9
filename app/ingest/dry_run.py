"""``POST /admin/triggers/<name>/test``: what the request path would do with a sample.

The dry run authenticates, parses, filters, derives the dedup key (and whether
a live claim already holds it) and renders the action - all through the same
code as real deliveries - but writes nothing and runs nothing. Secrets never
appear in its report.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from app.clock import utc_now_iso
from app.errors import AppError
from app.ingest import signatures
from app.ingest.dispatch import ExecutionService
from app.ingest.inbound import InboundRequest
from app.store import dedup_keys
from app.triggers.registry import CompiledTrigger
from app.triggers.templates import (
    TemplateRenderError,
    mask_secrets,
    render_action,
    template_context,
    trigger_secrets,
)


class DryRunRequest(BaseModel):
    """A sample request. A string ``body`` is sent as-is; other JSON values are serialised."""

    method: str = Field("POST", pattern=r"^[A-Z]{3,7}$")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | list[str]] = Field(default_factory=dict)
    body: Any = None


def _raw_body(sample: DryRunRequest) -> tuple[bytes, str | None]:
    if sample.body is None:
        return b"", None
    if isinstance(sample.body, str):
        return sample.body.encode(), None
    return json.dumps(sample.body, separators=(",", ":")).encode(), "application/json"


def _authenticate(
    trigger: CompiledTrigger, headers: dict[str, str], body: bytes
) -> tuple[dict[str, Any], signatures.Verification | None]:
    try:
        verification = signatures.verify(trigger.auth, headers, body)
    except AppError as exc:
        return {"ok": False, "scheme": trigger.auth.scheme, "error": exc.code}, None
    report = {"ok": True, "scheme": verification.scheme, "secret_index": verification.secret_index}
    return report, verification


def dry_run(
    service: ExecutionService,
    trigger: CompiledTrigger,
    sample: DryRunRequest,
    *,
    request_id: str | None,
) -> dict[str, Any]:
    """The report of what would happen; ``would`` is accept|duplicate|ignore|reject|handshake."""
    body, default_type = _raw_body(sample)
    headers = {name.lower(): value for name, value in sample.headers.items()}
    auth, verification = _authenticate(trigger, headers, body)
    report: dict[str, Any] = {"trigger": trigger.name, "enabled": trigger.enabled, "auth": auth}
    inbound = InboundRequest(
        method=sample.method,
        headers=headers,
        query=dict(sample.query),
        body=body,
        content_type=headers.get("content-type", default_type),
        request_id=request_id,
        received_at=utc_now_iso(),
        verification=verification,
    )
    try:
        evaluation = service.evaluate(trigger, inbound)
    except AppError as exc:
        report.update(parse={"ok": False, "error": exc.code}, would="reject")
        return report
    decision = evaluation.dedup
    duplicate_of = (
        dedup_keys.find_live(service.db, trigger.name, decision.key) if decision.key else None
    )
    report["parse"] = {"ok": True, "kind": evaluation.body.kind}
    report["filter"] = evaluation.filter_trace or {"expression": None, "matched": True}
    report["dedup"] = {
        "key": decision.key,
        "source": decision.source,
        "window_seconds": decision.window_seconds,
        "duplicate_of": duplicate_of,
    }
    context = template_context(
        body=evaluation.body.value,
        headers=headers,
        query=inbound.query,
        trigger=trigger.name,
        delivery_id="dry-run",
    )
    try:
        rendered = render_action(trigger.document, context)
        report["action"] = mask_secrets(rendered, trigger_secrets(trigger.document))
    except TemplateRenderError as exc:
        report["action"] = mask_secrets({"error": str(exc)}, trigger_secrets(trigger.document))
    report["would"] = (
        "reject"
        if not auth["ok"] or not trigger.enabled
        else "handshake"
        if evaluation.challenge is not None
        else "ignore"
        if not evaluation.matched
        else "duplicate"
        if duplicate_of
        else "accept"
    )
    return report
