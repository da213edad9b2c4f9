"""Which key identifies a repeated delivery, and for how long it is remembered.

Modes (per trigger, ``dedup.key``):

* ``auto`` (default): the sender's own delivery id - the one its retries
  keep - remembered for the long window (default 7 days, past the retry
  horizons of GitHub, Stripe, Slack and Svix). A trigger whose signature
  scheme defines that id takes it **only** from there, and ignores every other
  sender's id header (an unsigned ``X-GitHub-Delivery`` added to a signed
  Stripe event must not make it a new delivery):

  - ``stripe``: the signed body's event ``id``;
  - ``standard``: the signed ``webhook-id`` (``svix-id``);
  - ``github``: ``X-GitHub-Delivery`` (kept by GitHub's redeliveries);
  - ``slack``: the body's ``event_id`` (Slack's retries are re-signed with a
    new timestamp and carry ``X-Slack-Retry-Num``; the event id stays).

  Other schemes (``hmac``, ``token``, ``none``) take the first of the known
  id headers (:data:`DELIVERY_ID_HEADERS`), then a Stripe event ``id`` or a
  Slack ``event_id`` when the request carries that sender's signature header.
  Without any id, the SHA-256 of the canonical JSON payload, remembered for
  the short window (default 10 s), which absorbs accidental double sends
  without eating legitimate repeats.
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

# Sender delivery-id headers for schemes without an id of their own, most specific
# first (lower-cased). Each is the value the sender keeps on its retries: GitLab's
# ``Idempotency-Key`` (its event UUID is new on a resend) and Shopify's event id
# (documented for duplicate detection) come before the older headers.
DELIVERY_ID_HEADERS = (
    "webhook-id",
    "svix-id",
    "x-github-delivery",
    "idempotency-key",
    "x-gitlab-event-uuid",
    "x-shopify-event-id",
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


def _body_field(body: ParsedBody, name: str) -> str | None:
    value = body.value.get(name) if body.kind == "json" and isinstance(body.value, dict) else None
    return value if isinstance(value, str) and value else None


def _signed_id(request: InboundRequest) -> str | None:
    verification = request.verification
    return verification.signed_id if verification is not None else None


def _header_id(request: InboundRequest, name: str) -> tuple[str, str] | None:
    value = request.headers.get(name)
    return (name, value) if value else None


def _stripe_id(request: InboundRequest, body: ParsedBody) -> tuple[str, str] | None:
    event_id = _body_field(body, "id")
    return ("stripe-event-id", event_id) if event_id else None


def _slack_id(request: InboundRequest, body: ParsedBody) -> tuple[str, str] | None:
    event_id = _body_field(body, "event_id")
    return ("slack-event-id", event_id) if event_id else None


def _standard_id(request: InboundRequest, body: ParsedBody) -> tuple[str, str] | None:
    signed = _signed_id(request)
    return ("webhook-id", signed) if signed else None


def _github_id(request: InboundRequest, body: ParsedBody) -> tuple[str, str] | None:
    return _header_id(request, "x-github-delivery")


# Schemes whose sender defines the delivery id: only that source counts.
_SCHEME_ID = {
    "stripe": _stripe_id,
    "standard": _standard_id,
    "github": _github_id,
    "slack": _slack_id,
}


def sender_delivery_id(
    scheme: str, request: InboundRequest, body: ParsedBody
) -> tuple[str, str] | None:
    """(source, id) of the sender's own delivery id under ``scheme``, if there is one."""
    own = _SCHEME_ID.get(scheme)
    if own is not None:
        return own(request, body)
    signed = _standard_id(request, body)
    if signed is not None:
        return signed
    for header in DELIVERY_ID_HEADERS:
        found = _header_id(request, header)
        if found is not None:
            return found
    if "stripe-signature" in request.headers:
        return _stripe_id(request, body)
    if "x-slack-signature" in request.headers:
        return _slack_id(request, body)
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
        found = sender_delivery_id(trigger.auth.scheme, request, body)
        if found is not None:
            source, delivery_id = found
            return DedupDecision(_bounded("delivery", delivery_id), long_window, source)
    return DedupDecision(f"payload:{payload_hash(request, body)}", short_window, "payload")
