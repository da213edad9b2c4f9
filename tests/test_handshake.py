"""Slack's URL verification: answered with the challenge, recorded, never run."""

from __future__ import annotations

import json
import time
from typing import Any

from flask.testing import FlaskClient

from app.store import Database
from tests.test_dedup_sources import SLACK_SECRET, slack_headers

CHALLENGE = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"


def _count(db: Database, table: str) -> int:
    with db.read() as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _verification(challenge: str = CHALLENGE) -> bytes:
    return json.dumps(
        {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"}
    ).encode()


def test_url_verification_is_answered_with_the_challenge_and_recorded(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    # A filter that no handshake would pass: the handshake is answered all the same.
    make_trigger(
        "events",
        auth={"scheme": "slack", "secrets": [SLACK_SECRET]},
        filter="body.event.type == 'app_mention'",
    )
    body = _verification()
    now = int(time.time())
    for _ in range(2):  # Slack may verify the URL again: each one is answered
        response = client.post("/webhooks/events", data=body, headers=slack_headers(body, now))
        assert response.status_code == 200
        assert response.is_json
        assert response.get_json() == {"challenge": CHALLENGE}
    assert _count(db, "executions") == 0
    assert _count(db, "webhook_dedup_keys") == 0
    listed = client.get("/admin/deliveries?outcome=handshake", headers=auth_headers)
    assert listed.status_code == 200, listed.get_json()
    items = listed.get_json()["items"]
    assert [item["outcome"] for item in items] == ["handshake", "handshake"]
    assert all(item["execution_id"] is None for item in items)


def test_unsigned_url_verification_is_refused(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger("events", auth={"scheme": "slack", "secrets": [SLACK_SECRET]})
    body = _verification()
    headers = {**slack_headers(body, int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
    response = client.post("/webhooks/events", data=body, headers=headers)
    assert response.status_code == 401
    assert "challenge" not in response.get_data(as_text=True)


def test_url_verification_is_an_ordinary_delivery_for_other_schemes(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger("plain", auth={"scheme": "token", "secrets": ["shared-token"]})
    body = _verification()
    headers = {"X-Webhook-Token": "shared-token", "Content-Type": "application/json"}
    response = client.post("/webhooks/plain", data=body, headers=headers)
    assert response.status_code == 202
    assert response.get_json()["status"] == "accepted"
    assert _count(db, "executions") == 1


def test_dry_run_reports_a_handshake(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger("events", auth={"scheme": "slack", "secrets": [SLACK_SECRET]})
    body = _verification()
    sample = {"headers": slack_headers(body, int(time.time())), "body": body.decode()}
    report = client.post(
        "/admin/triggers/events/test", json=sample, headers=auth_headers
    ).get_json()
    assert report["would"] == "handshake"


def test_a_replayed_handshake_names_its_new_delivery(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger("events", auth={"scheme": "slack", "secrets": [SLACK_SECRET]})
    body = _verification()
    client.post("/webhooks/events", data=body, headers=slack_headers(body, int(time.time())))
    original = client.get("/admin/deliveries", headers=auth_headers).get_json()["items"][0]
    replayed = client.post(f"/admin/deliveries/{original['id']}/replay", headers=auth_headers)
    assert replayed.status_code == 202
    answer = replayed.get_json()
    assert answer["status"] == "handshake"
    assert answer["replay_of"] == original["id"]
    assert answer["delivery_id"] != original["id"]
    assert "challenge" not in answer
    shown = client.get(f"/admin/deliveries/{answer['delivery_id']}", headers=auth_headers)
    assert shown.get_json()["outcome"] == "handshake"
    assert _count(db, "executions") == 0
