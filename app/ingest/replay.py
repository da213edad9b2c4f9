"""Replay: run a stored delivery again, through the same path as a new webhook.

The stored request was verified when it arrived, so authentication is not
repeated; the trigger's *current* configuration applies (filter included) and
dedup is bypassed because the operator asked for another run. A disabled
trigger refuses replays (409 ``trigger_disabled``), as it refuses reruns.
"""

from __future__ import annotations

import time
from typing import Any

from app.clock import utc_now_iso
from app.errors import TriggerDisabled
from app.ingest.dispatch import ExecutionService
from app.ingest.inbound import InboundRequest
from app.store import deliveries
from app.triggers.registry import TriggerRegistry


def replay(
    service: ExecutionService,
    triggers: TriggerRegistry,
    delivery_id: str,
    request_id: str | None,
) -> dict[str, Any]:
    """A new delivery with ``replay_of`` set; returns the API's answer (HTTP 202).

    The answer has the shape of a webhook's, with ``replay_of``; a replayed
    sender handshake (Slack's ``url_verification``, say) is recorded again and
    answered ``{"status": "handshake", "delivery_id": ...}``, since no sender
    waits for its challenge.
    """
    started = time.perf_counter()
    original = deliveries.get(service.db, delivery_id)
    trigger = triggers.get(original.trigger)
    if not trigger.enabled:
        raise TriggerDisabled()
    kept = original.credentials or {}  # the values redacted in the stored copy, if kept
    inbound = InboundRequest(
        method=original.method,
        headers=original.headers | kept.get("headers", {}),
        query=original.query | kept.get("query", {}),
        body=original.body,
        content_type=original.content_type,
        request_id=request_id,
        received_at=utc_now_iso(),
        replay_of=original.id,
    )
    result = service.dispatch_webhook_event(
        trigger, inbound, request_started=started, bypass_dedup=True
    )
    if result.status == "handshake":  # nobody waits for a challenge: say what was recorded
        answer: dict[str, Any] = {"status": "handshake", "delivery_id": result.delivery_id}
        answer["request_id"] = request_id
    else:
        answer = result.payload(request_id)
    return answer | {"replay_of": original.id}
