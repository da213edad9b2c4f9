"""JSON nested beyond the documented depth limit is 400 ``invalid_json``, never 500."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.safe_json import MAX_JSON_DEPTH
from tests.conftest import github_headers


def _nested(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * depth + closer * depth).encode()


def _deep_object(depth: int) -> bytes:
    return ('{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)).encode()


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
@pytest.mark.parametrize("content_type", ["application/json", None])
def test_deep_webhook_json_is_400_invalid_json(
    client: FlaskClient, make_trigger: Any, depth: int, content_type: str | None
) -> None:
    make_trigger(require_json=True)
    body = _nested(depth)
    headers = github_headers(body, f"deep-{depth}")
    if content_type is None:
        del headers["Content-Type"]
    response = client.post("/webhooks/deploy", data=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


def test_deep_undeclared_body_is_text_when_json_is_not_required(
    client: FlaskClient, make_trigger: Any
) -> None:
    make_trigger()
    body = _deep_object(1_000)
    headers = {k: v for k, v in github_headers(body, "deep-text").items() if k != "Content-Type"}
    response = client.post("/webhooks/deploy", data=body, headers=headers)
    assert response.status_code == 202


def test_json_at_the_depth_limit_is_accepted(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger()
    body = _deep_object(MAX_JSON_DEPTH)
    response = client.post("/webhooks/deploy", data=body, headers=github_headers(body, "edge"))
    assert response.status_code == 202, response.get_json()


def test_deep_form_payload_stays_a_form(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger()
    body = b"payload=" + _nested(1_000)
    headers = {
        **github_headers(body, "deep-form"),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = client.post("/webhooks/deploy", data=body, headers=headers)
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/admin/triggers"),
        ("patch", "/admin/triggers/deploy"),
        ("post", "/admin/triggers/deploy/test"),
    ],
)
def test_deep_admin_json_is_400_invalid_json(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any, method: str, path: str
) -> None:
    make_trigger()
    response = getattr(client, method)(
        path,
        data=_deep_object(1_000),
        headers={**auth_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


def test_deep_cursor_is_400_invalid_cursor(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    cursor = base64.urlsafe_b64encode(_nested(1_000)).decode().rstrip("=")
    response = client.get(f"/admin/deliveries?cursor={cursor}", headers=auth_headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cursor"


NOT_STANDARD = [
    b'{"x": "\\ud800"}',  # a lone high surrogate
    b'{"\\udfff": 1}',  # a lone low surrogate, as a key
    b'{"x": NaN}',
    b"[Infinity, -Infinity]",
    b'{"n": 1e999999}',  # no float holds it: it would be infinity
]


@pytest.mark.parametrize("body", NOT_STANDARD)
def test_json_outside_the_standard_is_400_invalid_json_and_not_stored(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any, body: bytes
) -> None:
    make_trigger(dedup={"key": "payload"})
    response = client.post("/webhooks/deploy", data=body, headers=github_headers(body, "standard"))
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "invalid_json"
    assert "standard JSON" in response.get_json()["error"]["message"]
    listed = client.get("/admin/deliveries", headers=auth_headers).get_json()
    assert listed["items"] == []


@pytest.mark.parametrize("body", NOT_STANDARD[:3])
def test_json_outside_the_standard_is_400_on_the_admin_api(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any, body: bytes
) -> None:
    make_trigger()
    wrapped = b'{"body": ' + body + b"}"
    response = client.post(
        "/admin/triggers/deploy/test",
        data=wrapped,
        headers={**auth_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


def test_a_surrogate_pair_escape_is_one_character(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger(dedup={"key": "payload"})
    body = b'{"x": "\\ud83d\\ude00"}'
    response = client.post("/webhooks/deploy", data=body, headers=github_headers(body, "standard"))
    assert response.status_code == 202
