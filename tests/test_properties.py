"""Property tests: arbitrary input never breaks parsing or dedup key derivation."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import load_settings
from app.errors import InvalidJson
from app.ingest import dedup
from app.ingest.inbound import InboundRequest, ParsedBody, parse_body
from app.ingest.signatures import Verification
from app.triggers.registry import compile_trigger
from app.triggers.schema import TriggerDocument

SETTINGS = load_settings(env={})
header_names = st.sampled_from(
    [
        "webhook-id",
        "svix-id",
        "x-github-delivery",
        "x-gitlab-event-uuid",
        "x-shopify-webhook-id",
        "stripe-signature",
        "content-type",
        "x-other",
    ]
)
headers = st.dictionaries(header_names, st.text(max_size=300), max_size=6)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/vnd+json; charset=utf-8",
        "",
    ]
)
modes = st.sampled_from(
    ["auto", "payload", "none", "jmespath:body.id", 'jmespath:headers."x-other"']
)


def _trigger(mode: str) -> Any:
    document = TriggerDocument.model_validate(
        {
            "name": "prop",
            "auth": {"scheme": "none"},
            "dedup": {"key": mode},
            "action": {"type": "command", "argv": ["/bin/true"]},
        }
    )
    return compile_trigger(document, "2026-01-01T00:00:00.000000Z")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=512), content_type=content_types, require_json=st.booleans())
def test_parse_body_returns_or_raises_invalid_json(
    body: bytes, content_type: str | None, require_json: bool
) -> None:
    try:
        parsed = parse_body(body, content_type, require_json=require_json)
    except InvalidJson:
        return
    assert parsed.kind in ("json", "form", "text")
    if require_json:
        assert parsed.kind == "json"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=256),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
            max_leaves=10,
        ).map(lambda v: __import__("json").dumps(v).encode()),
    ),
    request_headers=headers,
    mode=modes,
    signed_id=st.one_of(st.none(), st.text(max_size=600)),
)
def test_dedup_key_is_always_bounded_text_or_none(
    body: bytes, request_headers: dict[str, str], mode: str, signed_id: str | None
) -> None:
    trigger = _trigger(mode)
    try:
        parsed = parse_body(body, request_headers.get("content-type"), require_json=False)
    except InvalidJson:
        parsed = ParsedBody("text", body.decode("utf-8", "replace"))
    request = InboundRequest(
        method="POST",
        headers=request_headers,
        query={},
        body=body,
        content_type=request_headers.get("content-type"),
        request_id=None,
        received_at="2026-01-01T00:00:00.000000Z",
        verification=Verification("standard", 0, signed_id) if signed_id else None,
    )
    context = {"body": parsed.value, "headers": request_headers, "query": {}}
    decision = dedup.decide(trigger, request, parsed, context, SETTINGS)
    if decision.key is None:
        assert mode == "none" or mode.startswith("jmespath:")
    else:
        assert isinstance(decision.key, str)
        assert len(decision.key) <= 300
        assert decision.window_seconds > 0
