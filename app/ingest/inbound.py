"""An inbound webhook as the dispatch path sees it, and how its body is parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from app.errors import InvalidJson
from app.ingest.signatures import Verification

BodyKind = Literal["json", "form", "text"]


@dataclass(frozen=True)
class InboundRequest:
    """What arrived: raw bytes and metadata. ``headers`` keys are lower-cased."""

    method: str
    headers: dict[str, str]
    query: dict[str, Any]
    body: bytes
    content_type: str | None
    request_id: str | None
    received_at: str
    verification: Verification | None = None
    replay_of: str | None = None


@dataclass(frozen=True)
class ParsedBody:
    kind: BodyKind
    value: Any = field(repr=False)


def _is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def parse_body(body: bytes, content_type: str | None, *, require_json: bool) -> ParsedBody:
    """Parse JSON, form-encoded or text bodies.

    A body declared as JSON (or any body when ``require_json``) must parse, or
    :class:`InvalidJson` is raised. Undeclared bodies that happen to be JSON are
    parsed as JSON; anything else is text (UTF-8, invalid bytes replaced).
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded" and not require_json:
        text = body.decode("utf-8", errors="replace")
        form = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, True).items()}
        return ParsedBody("form", form)
    declared_json = _is_json_type(media_type)
    if declared_json or require_json or body[:1] in (b"{", b"["):
        try:
            return ParsedBody("json", json.loads(body))
        except ValueError as exc:
            if declared_json or require_json:
                raise InvalidJson("The request body is not valid JSON.") from exc
    return ParsedBody("text", body.decode("utf-8", errors="replace"))


def canonical_json(value: Any) -> str:
    """Key-sorted, compact JSON: equal payloads give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def query_dict(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Query pairs as a dict: one value as a string, repeated keys as a list."""
    query: dict[str, Any] = {}
    for key, value in items:
        if key in query:
            existing = query[key]
            query[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            query[key] = value
    return query
