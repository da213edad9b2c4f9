"""HTTP action credentials are write-only; credential query values are not stored."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from app.store import Database
from tests.conftest import github_headers

URL = "https://deploy-bot:s3cret-pass@hooks.example.com/in?token=tok-123&team=ops"
HEADERS = {"Authorization": "Bearer abc-secret-token", "X-Api-Key": "key-456", "X-Team": "ops"}
CREDENTIALS = ("s3cret-pass", "deploy-bot:s3cret-pass", "tok-123", "abc-secret-token", "key-456")


def _http_action(**fields: Any) -> dict[str, Any]:
    return {"type": "http", "url": URL, "headers": dict(HEADERS), **fields}


def _stored_action(db: Database, name: str) -> dict[str, Any]:
    with db.read() as conn:
        row = conn.execute("SELECT document FROM triggers WHERE name = ?", (name,)).fetchone()
    return dict(json.loads(row["document"])["action"])


def test_action_credentials_are_masked_in_every_view(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    created = make_trigger("forward", action=_http_action())
    one = client.get("/admin/triggers/forward", headers=auth_headers).get_json()
    listed = client.get("/admin/triggers", headers=auth_headers).get_json()
    for view in (created, one, listed):
        text = json.dumps(view)
        for secret in CREDENTIALS:
            assert secret not in text
    action = one["action"]
    assert action["url"] == "https://[redacted]@hooks.example.com/in?token=[redacted]&team=ops"
    assert action["headers"] == {
        "Authorization": "[redacted]",
        "X-Api-Key": "[redacted]",
        "X-Team": "ops",
    }


def test_patch_keeps_masked_or_omitted_credentials(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger("forward", action=_http_action())
    shown = client.get("/admin/triggers/forward", headers=auth_headers).get_json()["action"]
    # Send back what was shown, with one change: the credentials stay.
    patch = {"action": {**shown, "timeout_seconds": 5}}
    for key in ("has_signing_secret",):
        patch["action"].pop(key)
    response = client.patch("/admin/triggers/forward", json=patch, headers=auth_headers)
    assert response.status_code == 200, response.get_json()
    stored = _stored_action(db, "forward")
    assert stored["url"] == URL
    assert stored["headers"] == HEADERS
    assert stored["timeout_seconds"] == 5
    # Headers left out altogether are kept as well.
    omitted = {"action": {"type": "http", "url": URL}}
    assert (
        client.patch("/admin/triggers/forward", json=omitted, headers=auth_headers).status_code
        == 200
    )
    assert _stored_action(db, "forward")["headers"] == HEADERS
    # A new value replaces the stored one.
    changed = {"action": {**shown, "headers": {"Authorization": "Bearer new-one"}}}
    changed["action"].pop("has_signing_secret")
    assert (
        client.patch("/admin/triggers/forward", json=changed, headers=auth_headers).status_code
        == 200
    )
    assert _stored_action(db, "forward")["headers"] == {"Authorization": "Bearer new-one"}


def test_dry_run_masks_action_credentials(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger("forward", action=_http_action())
    report = client.post(
        "/admin/triggers/forward/test", json={"body": {"after": "x"}}, headers=auth_headers
    ).get_json()
    text = json.dumps(report)
    for secret in CREDENTIALS:
        assert secret not in text


def test_credential_query_parameters_are_redacted_in_stored_deliveries(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(filter="query.token == 'q-secret'")  # filters still see the real value
    body = b'{"after": "abc"}'
    response = client.post(
        "/webhooks/deploy?token=q-secret&sig=s1&api_key=k1&access_token=a1&env=prod&env=dev",
        data=body,
        headers=github_headers(body, "q-1"),
    )
    assert response.get_json()["status"] == "accepted"
    stored = client.get(
        f"/admin/deliveries/{response.get_json()['delivery_id']}", headers=auth_headers
    ).get_json()
    assert stored["query"] == {
        "token": "[redacted]",
        "sig": "[redacted]",
        "api_key": "[redacted]",
        "access_token": "[redacted]",
        "env": ["prod", "dev"],
    }
