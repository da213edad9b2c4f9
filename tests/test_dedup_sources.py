"""Where ``auto`` dedup takes a delivery id from: each scheme's own id, nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from app.store import Database
from tests.conftest import github_headers

STRIPE_SECRET = "whsec_stripe"
SLACK_SECRET = "slack-signing"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()

# Headers other senders use for their delivery ids; none is signed by Stripe or Slack.
FOREIGN_ID_HEADERS = ("X-GitHub-Delivery", "webhook-id", "svix-id", "X-Gitlab-Event-UUID")


def _executions(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0])


def stripe_headers(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(STRIPE_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={mac}"}


def slack_headers(body: bytes, timestamp: int, **extra: str) -> dict[str, str]:
    signed = b"v0:" + str(timestamp).encode() + b":" + body
    mac = hmac.new(SLACK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={mac}",
        **extra,
    }


def test_stripe_event_with_added_foreign_id_headers_runs_once(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger("billing", auth={"scheme": "stripe", "secrets": [STRIPE_SECRET]})
    body = json.dumps({"id": "evt_bypass", "object": "event", "type": "charge.succeeded"}).encode()
    statuses = []
    for attempt in range(5):
        headers = stripe_headers(body)
        headers[FOREIGN_ID_HEADERS[attempt % len(FOREIGN_ID_HEADERS)]] = f"forged-{attempt}"
        statuses.append(client.post("/webhooks/billing", data=body, headers=headers).status_code)
    assert statuses == [202, 200, 200, 200, 200]
    assert _executions(db) == 1


def test_standard_webhooks_ignore_an_added_github_delivery_header(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger("std", auth={"scheme": "standard", "secrets": [STANDARD_SECRET]})
    body = '{"type":"user.created"}'
    sent_at = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_signed",
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(STANDARD_SECRET).sign("msg_signed", sent_at, body),
        "Content-Type": "application/json",
    }
    first = client.post("/webhooks/std", data=body, headers=headers)
    forged = client.post(
        "/webhooks/std", data=body, headers={**headers, "X-GitHub-Delivery": "forged"}
    )
    assert (first.status_code, forged.status_code) == (202, 200)
    assert _executions(db) == 1


def test_github_trigger_ignores_other_senders_id_headers(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    body = b'{"after": "abc"}'
    first = client.post("/webhooks/deploy", data=body, headers=github_headers(body, "gh-1"))
    forged = client.post(
        "/webhooks/deploy",
        data=body,
        headers={**github_headers(body, "gh-1"), "webhook-id": "forged", "svix-id": "forged"},
    )
    assert (first.status_code, forged.status_code) == (202, 200)
    assert _executions(db) == 1


def test_slack_retry_is_a_duplicate_and_keeps_its_retry_headers(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger("events", auth={"scheme": "slack", "secrets": [SLACK_SECRET]})
    body = json.dumps(
        {"type": "event_callback", "event_id": "Ev0PV52K21", "event": {"type": "app_mention"}}
    ).encode()
    now = int(time.time())
    first = client.post("/webhooks/events", data=body, headers=slack_headers(body, now))
    # Slack's retry: same body, signed again with a later timestamp, retry headers added.
    retry = client.post(
        "/webhooks/events",
        data=body,
        headers=slack_headers(
            body, now + 60, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        ),
    )
    assert (first.status_code, retry.status_code) == (202, 200)
    assert retry.get_json()["execution_id"] == first.get_json()["execution_id"]
    assert _executions(db) == 1
    stored = client.get(
        f"/admin/deliveries/{retry.get_json()['delivery_id']}", headers=auth_headers
    ).get_json()
    assert stored["dedup_key"] == "delivery:Ev0PV52K21"
    assert stored["report"]["dedup"]["source"] == "slack-event-id"
    assert stored["headers"]["x-slack-retry-num"] == "1"
    assert stored["headers"]["x-slack-retry-reason"] == "http_timeout"


def test_slack_events_with_different_ids_both_run(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger("events", auth={"scheme": "slack", "secrets": [SLACK_SECRET]})
    now = int(time.time())
    for event_id in ("Ev1", "Ev2"):
        body = json.dumps({"type": "event_callback", "event_id": event_id, "event": {}}).encode()
        assert (
            client.post("/webhooks/events", data=body, headers=slack_headers(body, now)).status_code
            == 202
        )
    assert _executions(db) == 2


@pytest.mark.parametrize(
    ("retry_headers", "source"),
    [
        # GitLab: the event UUID is new on a resend; Idempotency-Key is what stays.
        (
            [
                {"X-Gitlab-Event-UUID": "uuid-1", "Idempotency-Key": "idem-1"},
                {"X-Gitlab-Event-UUID": "uuid-2", "Idempotency-Key": "idem-1"},
            ],
            "idempotency-key",
        ),
        # Shopify documents X-Shopify-Event-Id for spotting duplicates.
        (
            [
                {"X-Shopify-Webhook-Id": "wh-1", "X-Shopify-Event-Id": "ev-1"},
                {"X-Shopify-Webhook-Id": "wh-2", "X-Shopify-Event-Id": "ev-1"},
            ],
            "x-shopify-event-id",
        ),
    ],
)
def test_token_senders_are_deduplicated_by_the_id_their_retries_keep(
    client: FlaskClient,
    db: Database,
    auth_headers: dict[str, str],
    make_trigger: Any,
    retry_headers: list[dict[str, str]],
    source: str,
) -> None:
    make_trigger("shop", auth={"scheme": "token", "secrets": ["shared-token"]})
    answers = []
    for index, extra in enumerate(retry_headers):
        body = json.dumps({"order": 1, "attempt": index}).encode()  # a later, different copy
        headers = {"X-Webhook-Token": "shared-token", "Content-Type": "application/json", **extra}
        answers.append(client.post("/webhooks/shop", data=body, headers=headers))
    assert [answer.status_code for answer in answers] == [202, 200]
    stored = client.get(
        f"/admin/deliveries/{answers[0].get_json()['delivery_id']}", headers=auth_headers
    ).get_json()
    assert stored["report"]["dedup"]["source"] == source
    assert _executions(db) == 1
