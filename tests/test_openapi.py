"""``/openapi.json`` matches what the server really answers.

Every documented operation is called for real (its success, and the errors it
documents that a test can provoke: 401, 404, 409, 422) and each answer is
validated with jsonschema against the schema documented for its status and
media type. An operation in the spec that the walk does not call fails the
test, so new routes get documented and checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from tests.conftest import ENGINE_AUTH, github_headers, trigger_document, wait_for

Call = Callable[[FlaskClient], TestResponse]


def _validate(spec: dict[str, Any], method: str, path: str, response: TestResponse) -> None:
    documented = spec["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method.upper()} {path} answered undocumented {status}"
    content = documented[status].get("content")
    if content is None:
        assert response.data == b"", f"{method.upper()} {path} {status} has an undocumented body"
        return
    assert response.mimetype in content, f"{method.upper()} {path} {status}: {response.mimetype}"
    if response.mimetype != "application/json":
        return
    schema = {**content["application/json"]["schema"], "components": spec["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(response.get_json()))
    assert not errors, f"{method.upper()} {path} {status}: {[e.message for e in errors]}"


@pytest.fixture
def scenario(engine_app: Flask) -> dict[str, str]:
    """A delivery whose execution succeeded, a slow one still going, a disabled trigger."""
    client = engine_app.test_client()
    created = client.post("/admin/triggers", json=trigger_document("deploy"), headers=ENGINE_AUTH)
    assert created.status_code == 201
    body = b'{"after": "abc123"}'
    accepted = client.post("/webhooks/deploy", data=body, headers=github_headers(body, "d-1"))
    assert accepted.status_code == 202
    ids = accepted.get_json()
    wait_for(
        lambda: (
            client.get(f"/admin/executions/{ids['execution_id']}", headers=ENGINE_AUTH).get_json()[
                "status"
            ]
            == "succeeded"
        )
    )
    off = client.post(
        "/admin/triggers", json=trigger_document("off", enabled=False), headers=ENGINE_AUTH
    )
    assert off.status_code == 201
    slow_action = {"type": "command", "argv": ["/bin/sleep", "30"]}
    slow = client.post(
        "/admin/triggers", json=trigger_document("slow", action=slow_action), headers=ENGINE_AUTH
    )
    assert slow.status_code == 201
    pending = client.post("/webhooks/slow", data=body, headers=github_headers(body, "s-1"))
    assert pending.status_code == 202
    return {
        "delivery": ids["delivery_id"],
        "execution": ids["execution_id"],
        "slow": pending.get_json()["execution_id"],
    }


def _calls(ids: dict[str, str]) -> dict[tuple[str, str], list[Call]]:
    """For each operation: calls with a token that succeed or fail as documented."""
    a = ENGINE_AUTH
    ex, dl = ids["execution"], ids["delivery"]
    return {
        ("get", "/healthz"): [lambda c: c.get("/healthz")],
        ("get", "/readyz"): [lambda c: c.get("/readyz")],
        ("get", "/metrics"): [lambda c: c.get("/metrics")],
        ("get", "/openapi.json"): [],
        ("post", "/webhooks/{trigger}"): [
            lambda c: c.post("/webhooks/nope", data=b"{}", headers=github_headers(b"{}", "x")),
            lambda c: c.post("/webhooks/deploy", data=b"{}"),
        ],
        ("get", "/admin/triggers"): [lambda c: c.get("/admin/triggers", headers=a)],
        ("post", "/admin/triggers"): [
            lambda c: c.post("/admin/triggers", json=trigger_document("new"), headers=a),
            lambda c: c.post("/admin/triggers", json=trigger_document("deploy"), headers=a),
            lambda c: c.post("/admin/triggers", json={"name": "x"}, headers=a),
        ],
        ("get", "/admin/triggers/{name}"): [
            lambda c: c.get("/admin/triggers/deploy", headers=a),
            lambda c: c.get("/admin/triggers/nope", headers=a),
        ],
        ("patch", "/admin/triggers/{name}"): [
            lambda c: c.patch("/admin/triggers/deploy", json={"description": "d"}, headers=a),
            lambda c: c.patch("/admin/triggers/nope", json={"description": "d"}, headers=a),
            lambda c: c.patch("/admin/triggers/deploy", json={"enabled": "maybe"}, headers=a),
        ],
        ("put", "/admin/triggers/{name}"): [
            lambda c: c.put("/admin/triggers/put1", json=trigger_document("put1"), headers=a),
            lambda c: c.put("/admin/triggers/put1", json=trigger_document("put1"), headers=a),
            lambda c: c.put("/admin/triggers/put1", json={"name": "other"}, headers=a),
        ],
        ("get", "/admin/triggers/{name}/recent-refusals"): [
            lambda c: c.get("/admin/triggers/nope/recent-refusals", headers=a),
            lambda c: c.get("/admin/triggers/nope/recent-refusals?limit=0", headers=a),
        ],
        ("post", "/admin/triggers/{name}/test"): [
            lambda c: c.post("/admin/triggers/deploy/test", json={"body": {}}, headers=a),
            lambda c: c.post("/admin/triggers/nope/test", json={"body": {}}, headers=a),
        ],
        ("delete", "/admin/triggers/{name}"): [
            lambda c: c.delete("/admin/triggers/new", headers=a),
            lambda c: c.delete("/admin/triggers/nope", headers=a),
        ],
        ("get", "/admin/deliveries"): [
            lambda c: c.get("/admin/deliveries", headers=a),
            lambda c: c.get("/admin/deliveries?limit=0", headers=a),
        ],
        ("get", "/admin/deliveries/{delivery_id}"): [
            lambda c: c.get(f"/admin/deliveries/{dl}", headers=a),
            lambda c: c.get("/admin/deliveries/nope", headers=a),
        ],
        ("post", "/admin/deliveries/{delivery_id}/replay"): [
            lambda c: c.post(f"/admin/deliveries/{dl}/replay", headers=a),
            lambda c: c.post("/admin/deliveries/nope/replay", headers=a),
        ],
        ("get", "/admin/executions"): [
            lambda c: c.get("/admin/executions", headers=a),
            lambda c: c.get("/admin/executions?limit=0", headers=a),
        ],
        ("get", "/admin/executions/{execution_id}"): [
            lambda c: c.get(f"/admin/executions/{ex}", headers=a),
            lambda c: c.get("/admin/executions/nope", headers=a),
        ],
        ("get", "/admin/executions/{execution_id}/logs"): [
            lambda c: c.get(f"/admin/executions/{ex}/logs", headers=a),
            lambda c: c.get("/admin/executions/nope/logs", headers=a),
        ],
        ("get", "/admin/executions/{execution_id}/stream"): [
            lambda c: c.get(f"/admin/executions/{ex}/stream", headers=a),
            lambda c: c.get("/admin/executions/nope/stream", headers=a),
        ],
        ("post", "/admin/executions/{execution_id}/cancel"): [
            lambda c: c.post(f"/admin/executions/{ex}/cancel", headers=a),
            lambda c: c.post(f"/admin/executions/{ids['slow']}/cancel", headers=a),
            lambda c: c.post("/admin/executions/nope/cancel", headers=a),
        ],
        ("post", "/admin/executions/{execution_id}/rerun"): [
            lambda c: c.post(f"/admin/executions/{ex}/rerun", headers=a),
            lambda c: c.post("/admin/executions/nope/rerun", headers=a),
        ],
        ("get", "/admin/stream"): [
            lambda c: c.get("/admin/stream", headers=a, buffered=False),
        ],
        ("get", "/admin/dedup-keys"): [
            lambda c: c.get("/admin/dedup-keys", headers=a),
            lambda c: c.get("/admin/dedup-keys?limit=0", headers=a),
        ],
        ("delete", "/admin/dedup-keys"): [
            lambda c: c.delete("/admin/dedup-keys?trigger=deploy&key=delivery:d-1", headers=a),
            lambda c: c.delete("/admin/dedup-keys", headers=a),
        ],
        ("get", "/admin/metrics/summary"): [
            lambda c: c.get("/admin/metrics/summary", headers=a),
        ],
    }


def test_every_operation_answers_what_the_spec_documents(
    engine_app: Flask, scenario: dict[str, str]
) -> None:
    client = engine_app.test_client()
    spec = client.get("/openapi.json").get_json()
    calls = _calls(scenario)
    documented = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert documented - set(calls) == set(), "operations the walk does not call"
    seen: dict[tuple[str, str], set[int]] = {}
    for (method, path), requests in calls.items():
        if (method, path) not in documented:
            continue
        for call in requests:
            response = call(client)
            try:
                _validate(spec, method, path, response)
            finally:
                response.close()
            seen.setdefault((method, path), set()).add(response.status_code)
        if path.startswith("/admin"):
            anonymous = getattr(client, method)(path.replace("{", "").replace("}", ""))
            _validate(spec, method, path, anonymous)
            assert anonymous.status_code == 401
    for (method, path), statuses in seen.items():
        assert any(s < 300 for s in statuses) or path.startswith("/webhooks"), (
            method,
            path,
            statuses,
        )
    assert 409 in seen[("post", "/admin/triggers")]
    assert 409 in seen[("post", "/admin/executions/{execution_id}/cancel")]


def test_every_admin_operation_documents_the_error_envelope(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, item in spec["paths"].items():
        if not path.startswith("/admin"):
            continue
        for method, operation in item.items():
            responses = operation["responses"]
            assert responses["401"]["content"]["application/json"]["schema"] == envelope
            if "{" in path:
                assert "404" in responses, (method, path)
            assert any(s.startswith("2") for s in responses), (method, path)
    assert "ValidationErrorModel" not in spec["components"]["schemas"]


def test_docs_opens_the_interactive_ui(client: FlaskClient) -> None:
    page = client.get("/docs/")
    assert page.status_code == 200
    assert b'id="swagger-ui"' in page.data
