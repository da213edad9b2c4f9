"""``POST /webhooks/<trigger>``: the ingest path (docs/architecture.md, "The request path").

Order matters and is the contract: size limit, trigger lookup, authentication
over the raw bytes, then :meth:`ExecutionService.dispatch_webhook_event`
(parse, filter, dedup, record). A request that fails authentication is not
stored, but counted and logged (:mod:`app.ingest.auth_failures`). A trigger
with ``auth.allow_ips`` refuses other source addresses (as decided by
:mod:`app.ingest.client_address` with ``TRUSTED_PROXIES``) with 403
``ip_not_allowed`` before authentication. Every 4xx answered is recorded by
:mod:`app.ingest.refusals`. This route is deliberately a plain Flask view (no
model validation): it is the hot path.
"""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, current_app, g, jsonify, request

from app.clock import utc_now_iso
from app.errors import (
    AppError,
    IpNotAllowed,
    MethodNotAllowed,
    ServiceUnavailable,
    SignatureInvalid,
    SignatureMissing,
    TimestampOutOfTolerance,
    TriggerDisabled,
    TriggerNotFound,
)
from app.ingest import auth_failures, refusals, signatures
from app.ingest.body import read_body
from app.ingest.client import client_source, remote_address
from app.ingest.client_address import IPAddress, in_networks, parse_networks
from app.ingest.inbound import InboundRequest, query_dict
from app.ingest.payloads import parse_for_trigger
from app.ingest.replies import reply, rule_error_reply
from app.triggers.registry import CompiledTrigger
from app.wiring import components, execution_service, trigger_registry

bp = Blueprint("webhooks", __name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _source() -> IPAddress | None:
    return client_source()


def _check_source(trigger: CompiledTrigger) -> None:
    allowed = trigger.document.auth.allow_ips
    if allowed is None:
        return
    address = _source()
    if address is None or not in_networks(address, parse_networks(tuple(allowed))):
        auth_failures.record(trigger.name, IpNotAllowed.code)
        raise IpNotAllowed()


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


# Senders' settings pages often keep a trailing slash on the URL; a trigger name never
# holds a slash, so ``/webhooks/<name>/`` can only mean the same trigger (no redirect:
# senders do not follow one with their POST).
@bp.route("/webhooks/<name>", methods=_METHODS)
@bp.route("/webhooks/<name>/", methods=_METHODS)
def receive(name: str) -> tuple[Response, int]:
    try:
        return _receive(name)
    except ServiceUnavailable:
        raise
    except AppError as refused:
        if refused.status < 500 and _NAME.match(name):
            address = _source()
            refusals.record(
                components().store,
                trigger=name,
                status=refused.status,
                reason=refused.code,
                source_address=None if address is None else str(address),
                request_id=g.get("request_id"),
            )
        raise


def _allowed_methods(trigger: CompiledTrigger) -> str:
    """The ``Allow`` header: the trigger's methods, and OPTIONS, which is always answered."""
    methods = list(trigger.document.methods)
    if "OPTIONS" not in methods:
        methods.append("OPTIONS")
    return ", ".join(methods)


def _receive(name: str) -> tuple[Response, int]:
    started = g.get("request_started") or time.perf_counter()
    body = read_body(current_app.config["MAX_CONTENT_LENGTH"])
    if not _NAME.match(name):
        raise TriggerNotFound()
    trigger = trigger_registry().get(name)
    if not trigger.enabled:
        raise TriggerDisabled()
    if request.method not in trigger.document.methods:
        allowed = _allowed_methods(trigger)
        if request.method == "OPTIONS":  # asking what the trigger accepts: nothing runs
            return Response(status=204, headers={"Allow": allowed}), 204
        raise MethodNotAllowed(f"This trigger accepts {allowed}.", headers={"Allow": allowed})
    _check_source(trigger)
    try:
        verification = signatures.verify(trigger.auth, request.headers, body)
    except (SignatureMissing, SignatureInvalid, TimestampOutOfTolerance) as refused:
        auth_failures.record(trigger.name, refused.code)
        raise
    inbound = InboundRequest(
        method=request.method,
        headers={key.lower(): value for key, value in request.headers.items()},
        query=query_dict(list(request.args.items(multi=True))),
        body=body,
        content_type=request.content_type,
        request_id=g.get("request_id"),
        received_at=utc_now_iso(),
        verification=verification,
        remote_addr=remote_address(),
    )
    try:
        result = execution_service().dispatch_webhook_event(
            trigger, inbound, request_started=started
        )
    except SignatureInvalid:
        own = rule_error_reply(trigger, inbound)
        if own is None:
            raise
        return own, own.status_code
    if trigger.document.response is not None:
        # The outcome is committed: a wait for the execution's result may start now.
        parsed = parse_for_trigger(body, inbound.content_type, trigger.document.payload)
        own = reply(trigger, inbound, result, parsed.value, components().waiter)
        if own is not None:
            return own, own.status_code
    # 200 stops the sender's retries; a handshake's sender requires it.
    status = 200 if result.status in ("duplicate", "handshake") else 202
    return jsonify(result.payload(inbound.request_id)), status
