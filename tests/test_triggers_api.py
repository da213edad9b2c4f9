"""/admin/triggers: validation, write-only secrets, patch semantics."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import GITHUB_SECRET, trigger_document


def test_create_returns_public_view_without_secrets(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    response = client.post("/admin/triggers", json=trigger_document(), headers=auth_headers)
    assert response.status_code == 201
    assert response.headers["Location"] == "/admin/triggers/deploy"
    body = response.get_json()
    assert body["auth"]["has_secret"] is True
    assert "secrets" not in body["auth"]
    assert GITHUB_SECRET not in response.get_data(as_text=True)
    assert body["dedup"] == {"key": "auto", "window_seconds": None}
    assert body["concurrency"]["on_busy"] == "queue"


def test_duplicate_name_is_409(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    response = client.post("/admin/triggers", json=trigger_document(), headers=auth_headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "trigger_exists"


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (trigger_document(name="Bad Name"), "name"),
        (trigger_document(auth={"scheme": "github"}), "auth"),
        (trigger_document(auth={"scheme": "rot13", "secrets": ["x"]}), "auth.scheme"),
        (trigger_document(auth={"scheme": "hmac", "secrets": ["x"]}), "auth"),
        (trigger_document(filter="body.ref =="), "filter"),
        (trigger_document(dedup={"key": "sometimes"}), "dedup.key"),
        (trigger_document(action={"type": "command", "argv": []}), "action.command.argv"),
        (trigger_document(action={"type": "command", "argv": ["{{ oops"]}), "action.command.argv"),
        (trigger_document(action={"type": "http", "url": "ftp://x"}), "action.http.url"),
        (trigger_document(action={"type": "shell", "script": "rm -rf /"}), "action"),
        (trigger_document(concurrency={"max": 0}), "concurrency.max"),
        (trigger_document(unexpected=True), "unexpected"),
        # Values of the wrong JSON type are refused, not converted.
        (trigger_document(enabled="no"), "enabled"),
        (trigger_document(require_json=1), "require_json"),
        (trigger_document(retention_days="30"), "retention_days"),
        (trigger_document(retry={"max_attempts": True}), "retry.max_attempts"),
        (trigger_document(concurrency={"max": 2.0}), "concurrency.max"),
    ],
)
def test_invalid_document_is_422_with_field_path(
    client: FlaskClient, auth_headers: dict[str, str], document: dict[str, Any], path: str
) -> None:
    response = client.post("/admin/triggers", json=document, headers=auth_headers)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    paths = [detail["path"] for detail in error["details"]]
    assert any(p == path or p.startswith(path + ".") for p in paths), paths
    # A rejected document leaves nothing behind.
    assert client.get("/admin/triggers", headers=auth_headers).get_json()["items"] == []


def test_invalid_secret_is_never_echoed(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    document = trigger_document(auth={"scheme": "hmac", "secrets": ["hunter2-very-secret"]})
    response = client.post("/admin/triggers", json=document, headers=auth_headers)
    assert response.status_code == 422
    assert "hunter2" not in response.get_data(as_text=True)


def test_malformed_json_is_400(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    response = client.post(
        "/admin/triggers",
        data=b"{not json",
        headers={**auth_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


def test_get_list_and_delete(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger("alpha")
    make_trigger("beta")
    names = [
        t["name"] for t in client.get("/admin/triggers", headers=auth_headers).get_json()["items"]
    ]
    assert names == ["alpha", "beta"]
    assert client.get("/admin/triggers/alpha", headers=auth_headers).get_json()["name"] == "alpha"
    assert client.delete("/admin/triggers/alpha", headers=auth_headers).status_code == 204
    missing = client.get("/admin/triggers/alpha", headers=auth_headers)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "trigger_not_found"
    assert client.delete("/admin/triggers/alpha", headers=auth_headers).status_code == 404


def test_patch_keeps_secrets_and_omitted_fields(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(filter="body.ref == 'refs/heads/main'")
    response = client.patch(
        "/admin/triggers/deploy",
        json={"enabled": False, "auth": {"scheme": "github", "tolerance_seconds": 60}},
        headers=auth_headers,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["enabled"] is False
    assert body["auth"]["has_secret"] is True
    assert body["auth"]["tolerance_seconds"] == 60
    assert body["filter"] == "body.ref == 'refs/heads/main'"
    assert body["updated_at"] > body["created_at"]


def test_patch_rotates_secrets(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    response = client.patch(
        "/admin/triggers/deploy",
        json={"auth": {"scheme": "github", "secrets": ["old", "new"]}},
        headers=auth_headers,
    )
    assert response.get_json()["auth"]["secret_count"] == 2


def test_invalid_patch_is_422_and_changes_nothing(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    response = client.patch(
        "/admin/triggers/deploy",
        json={"enabled": False, "retry": {"max_attempts": 0}},
        headers=auth_headers,
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["path"] == "retry.max_attempts"
    assert client.get("/admin/triggers/deploy", headers=auth_headers).get_json()["enabled"] is True


def test_trigger_cannot_be_renamed(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    response = client.patch("/admin/triggers/deploy", json={"name": "other"}, headers=auth_headers)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["path"] == "name"


def test_http_signing_secret_is_write_only(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    view = make_trigger(
        action={"type": "http", "url": "https://example.com/hook", "signing_secret": "whsec_abc"}
    )
    assert view["action"]["has_signing_secret"] is True
    assert "signing_secret" not in view["action"]
    patched = client.patch(
        "/admin/triggers/deploy",
        json={"action": {"type": "http", "url": "https://example.com/other"}},
        headers=auth_headers,
    ).get_json()
    assert patched["action"]["has_signing_secret"] is True


def test_openapi_documents_the_trigger_model(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert "/admin/triggers" in spec["paths"]
    assert "TriggerDocument" in spec["components"]["schemas"]


HTTP = {"type": "http", "url": "https://hooks.example.com/in"}


@pytest.mark.parametrize(
    ("action", "secret"),
    [
        ({**HTTP, "headers": {"Authorization": "Bearer LEAK-1 {{ x."}}, "LEAK-1"),
        ({**HTTP, "headers": {"X-Custom": "LEAK-2 {% if %}"}}, "LEAK-2"),
        ({**HTTP, "url": "https://u:LEAK-3@example.com/{{x.}}"}, "LEAK-3"),
        ({"type": "command", "argv": ["/bin/true"], "env": {"KEY": "LEAK-4 {{ }"}}, "LEAK-4"),
    ],
)
def test_a_template_that_may_hold_a_credential_is_422_without_its_text(
    client: FlaskClient, auth_headers: dict[str, str], action: dict[str, Any], secret: str
) -> None:
    document = trigger_document("quiet", action=action)
    refused = client.post("/admin/triggers", json=document, headers=auth_headers)
    assert refused.status_code == 422
    assert "does not compile" in refused.text
    assert secret not in refused.text


@pytest.mark.parametrize(
    "action",
    [
        {**HTTP, "headers": {"X-Team": "ops\r\nX-Injected: 1"}},
        {"type": "command", "argv": ["/bin/echo", "a\u0000b"]},
        {"type": "command", "argv": ["/bin/true"], "env": {"A": "x\u0000"}},
    ],
)
def test_actions_that_could_never_run_are_422(
    client: FlaskClient, auth_headers: dict[str, str], action: dict[str, Any]
) -> None:
    document = trigger_document("never", action=action)
    refused = client.post("/admin/triggers", json=document, headers=auth_headers)
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["error"]["code"] == "validation_failed"
