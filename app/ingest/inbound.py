"""An inbound webhook as the dispatch path sees it, and how its body is parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from app import safe_json
from app.errors import InvalidJson
from app.ingest.signatures import Verification

BodyKind = Literal["json", "form", "text", "xml", "multipart"]


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
    remote_addr: str | None = None  # the client's address, as app.ingest.client finds it


@dataclass(frozen=True)
class ParsedBody:
    kind: BodyKind
    value: Any = field(repr=False)


def _is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _form_payload(form: dict[str, list[str]]) -> Any | None:
    """The JSON a ``payload=<json>`` form carries (GitHub's form content type), else None."""
    values = form.get("payload")
    if len(form) != 1 or values is None or len(values) != 1:
        return None
    try:
        value = safe_json.loads(values[0])
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _invalid_json_message(error: ValueError) -> str:
    if isinstance(error, safe_json.JsonTooDeep):
        return f"The request body nests deeper than {safe_json.MAX_JSON_DEPTH} levels."
    if isinstance(error, safe_json.DuplicateKey):
        return "The request body has an object with the same key twice."
    if isinstance(error, safe_json.NotStandardJson):
        return f"The request body is not standard JSON: {error}."
    return "The request body is not valid JSON."


def parse_body(body: bytes, content_type: str | None, *, require_json: bool) -> ParsedBody:
    """Parse JSON, form-encoded or text bodies.

    A body declared as JSON (or any body when ``require_json``) must parse, or
    :class:`InvalidJson` is raised. A form whose only field is ``payload`` holding
    a JSON object or array - how GitHub sends with its
    ``application/x-www-form-urlencoded`` content type, and Slack's interactive
    requests - is that JSON (kind ``json``, the same ``body`` as a JSON delivery,
    and accepted by ``require_json``). Other forms are a dict of their fields.
    Undeclared bodies that happen to be JSON are parsed as JSON; anything else is
    text (UTF-8, invalid bytes replaced). JSON nested deeper than
    :data:`app.safe_json.MAX_JSON_DEPTH`, or with an object repeating a key,
    counts as invalid JSON.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", errors="replace")
        fields = parse_qs(text, keep_blank_values=True)
        carried = _form_payload(fields)
        if carried is not None:
            return ParsedBody("json", carried)
        if not require_json:
            form = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
            return ParsedBody("form", form)
    declared_json = _is_json_type(media_type)
    if declared_json or require_json or body[:1] in (b"{", b"["):
        try:
            return ParsedBody("json", safe_json.loads(body))
        except ValueError as exc:
            if declared_json or require_json:
                raise InvalidJson(_invalid_json_message(exc)) from None
    return ParsedBody("text", body.decode("utf-8", errors="replace"))


def _canonical_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1.0, 1e0 and -0.0 are the numbers 1 and 0
    if isinstance(value, dict):
        return {key: _canonical_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(item) for item in value]
    return value


def canonical_json(value: Any) -> str:
    """Key-sorted, compact JSON with canonical numbers: equal payloads give equal text.

    A number with an integral value is written as an integer (``1.0``, ``1e0`` and
    ``1`` are the same number, so the same payload); other numbers keep Python's
    shortest round-trip form. Duplicate keys never get here: the parser refuses them.
    """
    return json.dumps(
        _canonical_numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


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
