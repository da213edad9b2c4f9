"""Which key identifies a repeated delivery, and for how long it is remembered.

Modes (per trigger, ``dedup.key``):

* ``auto`` (default): the sender's own delivery id when it sends one - the
  Standard Webhooks/Svix ``webhook-id``, ``X-GitHub-Delivery``,
  ``X-Gitlab-Event-UUID``, ``X-Shopify-Webhook-Id``, or a Stripe event's body
  ``id`` - remembered for the long window (default 7 days, past the retry
  horizons of GitHub, Stripe and Svix). Without one, the SHA-256 of the
  canonical JSON payload, remembered for the short window (default 10 s), which
  absorbs accidental double sends without eating legitimate repeats.
* ``payload``: always the payload hash, short window.
* ``jmespath:<expr>``: the canonical JSON of the expression's result over
  ``{"body", "headers", "query"}``, long window; a null result means no key.
* ``none``: no deduplication.

A trigger's ``dedup.window_seconds`` overrides the window of every mode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from jmespath.exceptions import JMESPathError

from app.config import Settings
from app.ingest.inbound import InboundRequest, ParsedBody, canonical_json
from app.triggers.registry import CompiledTrigger

# Sender delivery-id headers, most specific first (lower-cased).
DELIVERY_ID_HEADERS = (
    "webhook-id",
    "svix-id",
    "x-github-delivery",
    "x-gitlab-event-uuid",
    "x-shopify-webhook-id",
)
_MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class DedupDecision:
    key: str | None
    window_seconds: int
    source: str  # which rule produced the key, for the processing report


def _bounded(prefix: str, value: str) -> str:
    if len(value) > _MAX_KEY_LENGTH:
        value = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return f"{prefix}:{value}"


def sender_delivery_id(request: InboundRequest, body: ParsedBody) -> tuple[str, str] | None:
    """(source, id) of the sender's own delivery id, if the request carries one."""
    if request.verification is not None and request.verification.signed_id:
        return "webhook-id", request.verification.signed_id
    for header in DELIVERY_ID_HEADERS:
        value = request.headers.get(header)
        if value:
            return header, value
    if "stripe-signature" in request.headers and body.kind == "json":
        event_id = body.value.get("id") if isinstance(body.value, dict) else None
        if isinstance(event_id, str) and event_id:
            return "stripe-event-id", event_id
    return None


def payload_hash(request: InboundRequest, body: ParsedBody) -> str:
    data = canonical_json(body.value).encode() if body.kind != "text" else request.body
    return hashlib.sha256(data).hexdigest()


def decide(
    trigger: CompiledTrigger,
    request: InboundRequest,
    body: ParsedBody,
    context: dict[str, Any],
    settings: Settings,
) -> DedupDecision:
    """The dedup key and window for this request under the trigger's mode."""
    override = trigger.document.dedup.window_seconds
    long_window = override or settings.dedup_window_seconds
    short_window = override or settings.dedup_payload_window_seconds
    mode = trigger.dedup_mode
    if mode == "none":
        return DedupDecision(None, 0, "none")
    if mode == "jmespath":
        assert trigger.dedup_expression is not None
        try:
            value = trigger.dedup_expression.search(context)
        except JMESPathError:
            return DedupDecision(None, 0, "jmespath:error")
        if value is None:
            return DedupDecision(None, 0, "jmespath:null")
        return DedupDecision(_bounded("jmespath", canonical_json(value)), long_window, "jmespath")
    if mode == "auto":
        found = sender_delivery_id(request, body)
        if found is not None:
            source, delivery_id = found
            return DedupDecision(_bounded("delivery", delivery_id), long_window, source)
    return DedupDecision(f"payload:{payload_hash(request, body)}", short_window, "payload")
