"""POST /webhooks/<trigger>: every step of the request path, over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from app.store import Database
from tests.conftest import GITHUB_SECRET, github_headers

PUSH = json.dumps({"ref": "refs/heads/main", "after": "abc123"}).encode()


def _count(db: Database, table: str) -> int:
    with db.read() as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _error(response: Any) -> str:
    body = response.get_json()
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    return str(body["error"]["code"])


def test_github_delivery_is_accepted_and_recorded(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    response = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "g-1"))
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "accepted"
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["stream_url"] == f"/admin/executions/{body['execution_id']}/stream"
    with db.read() as conn:
        delivery = conn.execute("SELECT * FROM deliveries").fetchone()
        execution = conn.execute("SELECT * FROM executions").fetchone()
    assert delivery["id"] == body["delivery_id"]
    assert delivery["outcome"] == "accepted"
    assert bytes(delivery["body"]) == PUSH
    assert execution["id"] == body["execution_id"]
    assert execution["status"] == "queued"
    assert execution["request_id"] == body["request_id"]


def test_stored_headers_have_credentials_redacted(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    headers = {**github_headers(PUSH, "g-2"), "Authorization": "Bearer sender-token"}
    delivery_id = client.post("/webhooks/deploy", data=PUSH, headers=headers).get_json()[
        "delivery_id"
    ]
    stored = client.get(f"/admin/deliveries/{delivery_id}", headers=auth_headers).get_json()
    assert stored["headers"]["x-hub-signature-256"] == "[redacted]"
    assert stored["headers"]["authorization"] == "[redacted]"
    assert stored["headers"]["x-github-delivery"] == "g-2"
    assert stored["body"] == PUSH.decode()


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h, b: (h, b + b" "), "signature_invalid"),  # tampered body
        (lambda h, b: (github_headers(b, "g", secret="wrong"), b), "signature_invalid"),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "X-Hub-Signature-256"}, b),
            "signature_missing",
        ),
    ],
)
def test_bad_signature_is_401_and_nothing_is_stored(
    client: FlaskClient, db: Database, make_trigger: Any, mutate: Any, code: str
) -> None:
    make_trigger()
    headers, body = mutate(github_headers(PUSH, "g-3"), PUSH)
    response = client.post("/webhooks/deploy", data=body, headers=headers)
    assert response.status_code == 401
    assert _error(response) == code
    assert _count(db, "deliveries") == 0
    assert _count(db, "executions") == 0


def test_rotated_secret_is_accepted(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger(auth={"scheme": "github", "secrets": ["old-secret", "new-secret"]})
    for delivery, secret in (("r-1", "old-secret"), ("r-2", "new-secret")):
        headers = github_headers(PUSH, delivery, secret=secret)
        assert client.post("/webhooks/deploy", data=PUSH, headers=headers).status_code == 202


def _stripe_headers(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={mac}"}


def test_stripe_event_is_accepted_and_deduplicated_by_event_id(
    client: FlaskClient, make_trigger: Any
) -> None:
    make_trigger("billing", auth={"scheme": "stripe", "secrets": ["whsec_stripe"]})
    body = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid"}).encode()
    now = int(time.time())
    first = client.post(
        "/webhooks/billing", data=body, headers=_stripe_headers(body, "whsec_stripe", now)
    )
    # Stripe's retry is signed anew with a later timestamp: still the same event.
    retry = client.post(
        "/webhooks/billing", data=body, headers=_stripe_headers(body, "whsec_stripe", now + 60)
    )
    assert first.status_code == 202
    assert retry.status_code == 200
    assert retry.get_json()["execution_id"] == first.get_json()["execution_id"]


def test_stale_stripe_timestamp_is_refused(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger("billing", auth={"scheme": "stripe", "secrets": ["whsec_stripe"]})
    body = b'{"id": "evt_2"}'
    headers = _stripe_headers(body, "whsec_stripe", int(time.time()) - 3600)
    response = client.post("/webhooks/billing", data=body, headers=headers)
    assert response.status_code == 401
    assert _error(response) == "timestamp_out_of_tolerance"


def test_standard_webhooks_signed_by_the_reference_library(
    client: FlaskClient, make_trigger: Any
) -> None:
    secret = "whsec_" + base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()
    make_trigger("std", auth={"scheme": "standard", "secrets": [secret]})
    body = '{"type":"user.created","data":{"id":1}}'
    sent_at = datetime.now(UTC)
    signature = Webhook(secret).sign("msg_1", sent_at, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }
    first = client.post("/webhooks/std", data=body, headers=headers)
    again = client.post("/webhooks/std", data=body, headers=headers)
    assert first.status_code == 202, first.get_json()
    assert again.status_code == 200
    assert again.get_json()["execution_id"] == first.get_json()["execution_id"]


def test_slack_form_body_is_accepted(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger("slash", auth={"scheme": "slack", "secrets": ["slack-signing"]})
    body = b"command=%2Fdeploy&text=prod&user_name=ada"
    timestamp = str(int(time.time()))
    mac = hmac.new(b"slack-signing", b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }
    response = client.post("/webhooks/slash", data=body, headers=headers)
    assert response.status_code == 202
    report = client.get(
        f"/admin/deliveries/{response.get_json()['delivery_id']}", headers=auth_headers
    ).get_json()["report"]
    assert report["body"]["kind"] == "form"


def test_hmac_scheme_with_header_prefix_and_base64(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger(
        "custom",
        auth={
            "scheme": "hmac",
            "secrets": ["k"],
            "header": "X-Signature",
            "algorithm": "sha512",
            "encoding": "base64",
            "prefix": "sha512=",
        },
    )
    mac = base64.b64encode(hmac.new(b"k", PUSH, hashlib.sha512).digest()).decode()
    ok = client.post("/webhooks/custom", data=PUSH, headers={"X-Signature": f"sha512={mac}"})
    bad = client.post("/webhooks/custom", data=PUSH, headers={"X-Signature": mac})
    assert ok.status_code == 202
    assert bad.status_code == 401


def test_token_and_none_schemes(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger("tok", auth={"scheme": "token", "secrets": ["shared-token"]})
    make_trigger("open", auth={"scheme": "none"})
    assert (
        client.post(
            "/webhooks/tok", data=PUSH, headers={"X-Webhook-Token": "shared-token"}
        ).status_code
        == 202
    )
    assert (
        client.post("/webhooks/tok", data=PUSH, headers={"X-Webhook-Token": "nope"}).status_code
        == 401
    )
    assert client.post("/webhooks/open", data=PUSH).status_code == 202


def test_unknown_trigger_is_404(client: FlaskClient) -> None:
    for name in ("missing", "Not_A_Slug", "x" * 70):
        response = client.post(f"/webhooks/{name}", data=PUSH)
        assert response.status_code == 404
        assert _error(response) == "trigger_not_found"


def test_a_trailing_slash_reaches_the_same_trigger(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    """Senders' settings pages often keep a trailing slash; it is the same trigger."""
    make_trigger()
    response = client.post("/webhooks/deploy/", data=PUSH, headers=github_headers(PUSH, "s-1"))
    assert response.status_code == 202, response.get_json()
    again = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "s-1"))
    assert again.get_json()["status"] == "duplicate"
    assert again.get_json()["execution_id"] == response.get_json()["execution_id"]
    refused = client.post("/webhooks/deploy/", data=PUSH, headers=github_headers(PUSH, "s-2", "x"))
    assert refused.status_code == 401
    missing = client.post("/webhooks/missing/", data=PUSH)
    assert (missing.status_code, _error(missing)) == (404, "trigger_not_found")
    assert _count(db, "executions") == 1


def test_disabled_trigger_is_409(client: FlaskClient, db: Database, make_trigger: Any) -> None:
    make_trigger(enabled=False)
    response = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "d"))
    assert response.status_code == 409
    assert _error(response) == "trigger_disabled"
    assert _count(db, "deliveries") == 0


def test_oversized_body_is_413_before_anything_else(
    make_app: Any, auth_headers: dict[str, str]
) -> None:
    client = make_app(max_body_bytes=64).test_client()
    response = client.post("/webhooks/missing", data=b"x" * 65)
    assert response.status_code == 413
    assert _error(response) == "payload_too_large"


def test_declared_json_that_does_not_parse_is_400(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    body = b'{"ref": '
    response = client.post("/webhooks/deploy", data=body, headers=github_headers(body, "j-1"))
    assert response.status_code == 400
    assert _error(response) == "invalid_json"
    assert _count(db, "deliveries") == 0


def test_trigger_requiring_json_refuses_text(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger(require_json=True)
    body = b"hello"
    headers = {**github_headers(body, "j-2"), "Content-Type": "text/plain"}
    response = client.post("/webhooks/deploy", data=body, headers=headers)
    assert response.status_code == 400
    assert _error(response) == "invalid_json"


def test_text_body_is_accepted_when_json_not_required(
    client: FlaskClient, make_trigger: Any
) -> None:
    make_trigger()
    body = b"plain text ping"
    headers = {**github_headers(body, "t-1"), "Content-Type": "text/plain"}
    assert client.post("/webhooks/deploy", data=body, headers=headers).status_code == 202


def test_filter_mismatch_is_recorded_as_ignored(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(filter="body.ref == 'refs/heads/release'")
    response = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "f-1"))
    assert response.status_code == 202
    assert response.get_json()["status"] == "ignored"
    assert response.get_json()["reason"] == "filter_mismatch"
    assert _count(db, "executions") == 0
    stored = client.get(
        f"/admin/deliveries/{response.get_json()['delivery_id']}", headers=auth_headers
    ).get_json()
    assert stored["outcome"] == "ignored"
    assert stored["report"]["filter"] == {
        "expression": "body.ref == 'refs/heads/release'",
        "matched": False,
        "result": "false",
    }


def test_filter_sees_headers_and_query(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger(filter="headers.\"x-github-event\" == 'push' && query.env == 'prod'")
    headers = github_headers(PUSH, "q-1")
    assert (
        client.post("/webhooks/deploy?env=prod", data=PUSH, headers=headers).get_json()["status"]
        == "accepted"
    )
    headers = github_headers(PUSH, "q-2")
    assert (
        client.post("/webhooks/deploy?env=dev", data=PUSH, headers=headers).get_json()["status"]
        == "ignored"
    )


def test_secrets_and_signatures_never_reach_the_logs(
    client: FlaskClient, make_trigger: Any, caplog: pytest.LogCaptureFixture
) -> None:
    make_trigger()
    headers = github_headers(PUSH, "l-1")
    with caplog.at_level(logging.DEBUG):
        client.post("/webhooks/deploy", data=PUSH, headers=headers)
        client.post("/webhooks/deploy", data=PUSH + b"x", headers=headers)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert headers["X-Hub-Signature-256"] not in text
    assert headers["X-Hub-Signature-256"][7:] not in text
    assert GITHUB_SECRET not in text
    assert "abc123" not in text  # the body is not logged


@pytest.mark.sqlite_only  # holds SQLite's write lock past the busy timeout
def test_store_unavailable_is_503_with_retry_after(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    # Another connection holds the write lock past the busy timeout.
    blocker = db.connect()
    blocker.execute("PRAGMA busy_timeout = 0")
    blocker.execute("BEGIN IMMEDIATE")
    db.busy_timeout_ms = 50
    db.close()
    try:
        response = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "u-1"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status_code == 503
    assert _error(response) == "store_unavailable"
    assert response.headers["Retry-After"]
