"""Sender handshakes: set-up requests that are answered, recorded, and never run.

Slack's Events API proves a request URL by POSTing a signed
``{"type": "url_verification", "challenge": "..."}`` and expecting the challenge
back (HTTP 200, here as JSON ``{"challenge": ...}``). Such a request is recorded
as a delivery with outcome ``handshake``: it passes no filter, claims no dedup
key and queues no execution.
"""

from __future__ import annotations

from app.ingest.inbound import ParsedBody

_MAX_CHALLENGE_LENGTH = 1024


def slack_challenge(scheme: str, body: ParsedBody) -> str | None:
    """The challenge to echo when this is a Slack URL verification, else None."""
    if scheme != "slack" or body.kind != "json" or not isinstance(body.value, dict):
        return None
    if body.value.get("type") != "url_verification":
        return None
    challenge = body.value.get("challenge")
    if not isinstance(challenge, str) or not 0 < len(challenge) <= _MAX_CHALLENGE_LENGTH:
        return None
    return challenge
