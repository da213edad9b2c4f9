"""Form-encoded bodies: GitHub's ``payload=<json>`` is the JSON it carries."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient

from tests.conftest import github_headers

PUSH = {"ref": "refs/heads/main", "after": "abc123", "repository": {"full_name": "o/r"}}


def _form_headers(body: bytes, delivery: str) -> dict[str, str]:
    return {
        **github_headers(body, delivery),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def test_github_form_delivery_is_filtered_and_rendered_like_json(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(
        filter="body.ref == 'refs/heads/main'",
        action={"type": "command", "argv": ["/bin/echo", "{{ body.repository.full_name }}"]},
    )
    form = urlencode({"payload": json.dumps(PUSH)}).encode()
    response = client.post("/webhooks/deploy", data=form, headers=_form_headers(form, "f-1"))
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "accepted"
    stored = client.get(
        f"/admin/deliveries/{response.get_json()['delivery_id']}", headers=auth_headers
    ).get_json()
    assert stored["report"]["body"]["kind"] == "json"
    assert stored["report"]["filter"]["matched"] is True
    sample = {"headers": _form_headers(form, "f-2"), "body": form.decode()}
    report = client.post("/admin/triggers/deploy/test", json=sample, headers=auth_headers)
    assert report.get_json()["action"]["argv"] == ["/bin/echo", "o/r"]


def test_form_and_json_copies_of_one_payload_share_the_payload_hash(
    client: FlaskClient, make_trigger: Any
) -> None:
    make_trigger(dedup={"key": "payload"}, require_json=True)
    raw = json.dumps(PUSH).encode()
    form = urlencode({"payload": json.dumps(PUSH)}).encode()
    first = client.post("/webhooks/deploy", data=raw, headers=github_headers(raw, "h-1"))
    again = client.post("/webhooks/deploy", data=form, headers=_form_headers(form, "h-2"))
    assert (first.status_code, again.status_code) == (202, 200)


def test_other_forms_stay_field_dicts(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(filter="body.payload == 'not json'")
    form = urlencode({"payload": "not json"}).encode()
    response = client.post("/webhooks/deploy", data=form, headers=_form_headers(form, "o-1"))
    assert response.get_json()["status"] == "accepted"
