"""Failure notifications: a signed Standard Webhooks event for failed executions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from app.execution import alerts
from tests.conftest import ENGINE_AUTH, PUSH, github_headers, trigger_document, wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setattr(alerts, "RETRY_DELAYS", (0.01, 0.01))
    server = Receiver([503])  # the first attempt fails: the retry delivers
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_failed_execution_posts_a_signed_event_with_the_stderr_tail(
    make_app: Any, receiver: Receiver
) -> None:
    app = make_app(
        engine_enabled=True,
        admin_token=ENGINE_AUTH["Authorization"][7:],
        allow_private_targets=True,
    )
    client = app.test_client()
    action = {"type": "command", "argv": ["/bin/sh", "-c", "echo boom-$0 >&2; exit 3", "x"]}
    notify = {"url": receiver.url, "signing_secret": SECRET}
    doc = trigger_document(action=action, notify=notify)
    created = client.post("/admin/triggers", json=doc, headers=ENGINE_AUTH)
    assert created.status_code == 201
    assert created.get_json()["notify"]["has_signing_secret"] is True
    assert SECRET not in created.get_data(as_text=True)
    ids = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "f-1")).get_json()
    wait_for(lambda: len(receiver.posts) == 2)
    headers, body = receiver.posts[-1]
    event = Webhook(SECRET).verify(body, headers)
    assert event["type"] == "execution.failed"
    data = event["data"]
    assert data["execution_id"] == ids["execution_id"]
    assert (data["trigger"], data["status"], data["exit_code"]) == ("deploy", "failed", 3)
    assert data["stderr_tail"] == ["boom-x"]
    assert headers["webhook-id"] == receiver.posts[0][0]["webhook-id"]  # same id on retry
    metrics = wait_for(
        lambda: (
            (text := client.get("/metrics").get_data(as_text=True))
            and 'hookrunner_failure_notifications_total{outcome="delivered"}' in text
            and text
        )
    )
    assert metrics


def test_private_destinations_are_refused_and_counted_without_failing_the_execution(
    make_app: Any, receiver: Receiver
) -> None:
    app = make_app(
        engine_enabled=True,
        admin_token=ENGINE_AUTH["Authorization"][7:],
        alert_webhook_url=receiver.url,
    )
    client = app.test_client()
    action = {"type": "command", "argv": ["/bin/false"]}
    client.post("/admin/triggers", json=trigger_document(action=action), headers=ENGINE_AUTH)
    before = alerts.NOTIFICATIONS.labels(outcome="failed")._value.get()
    ids = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "f-2")).get_json()
    url = f"/admin/executions/{ids['execution_id']}"
    wait_for(lambda: client.get(url, headers=ENGINE_AUTH).get_json()["status"] == "failed")
    wait_for(lambda: alerts.NOTIFICATIONS.labels(outcome="failed")._value.get() > before)
    assert receiver.posts == []


def test_notify_on_empty_list_silences_a_trigger() -> None:
    from app.config import Settings
    from app.triggers.schema import TriggerDocument

    doc = TriggerDocument.model_validate(trigger_document(notify={"on": []}))
    assert alerts.target_for(doc, "failed", Settings(alert_webhook_url="http://x")) is None
    plain = TriggerDocument.model_validate(trigger_document())
    target = alerts.target_for(plain, "timed_out", Settings(alert_webhook_url="http://x"))
    assert target is not None and target.url == "http://x"
    assert json.dumps(doc.model_dump())


def test_an_execution_reaped_after_its_process_died_notifies_interrupted(
    make_app: Any, receiver: Receiver
) -> None:
    """The engine that replaces a dead one reaps its execution and sends the event once."""
    import subprocess

    from app.clock import utc_now_iso
    from app.execution import leases

    token = ENGINE_AUTH["Authorization"][7:]
    first = make_app(admin_token=token, allow_private_targets=True)  # engine off
    client = first.test_client()
    action = {"type": "command", "argv": ["/bin/sleep", "300"]}
    notify = {"url": receiver.url, "on": ["interrupted"], "signing_secret": SECRET}
    created = client.post(
        "/admin/triggers", json=trigger_document(action=action, notify=notify), headers=ENGINE_AUTH
    )
    assert created.status_code == 201
    ids = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "r-1")).get_json()
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    db = first.extensions["hookrunner.db"]
    with db.write() as conn:  # as a process killed while running it would have left it
        conn.execute(
            "UPDATE executions SET status = 'running', owner = ?, heartbeat_at = ?,"
            " started_at = ?, claim_token = 'gone' WHERE id = ?",
            (
                f"{leases.HOSTNAME}:{dead.pid}:deadbeef",
                utc_now_iso(),
                utc_now_iso(),
                ids["execution_id"],
            ),
        )
    replacement = make_app(admin_token=token, allow_private_targets=True, engine_enabled=True)
    wait_for(lambda: len(receiver.posts) == 2)  # the first answer was a 503: retried
    headers, body = receiver.posts[-1]
    event = Webhook(SECRET).verify(body, headers)
    assert event["type"] == "execution.interrupted"
    assert event["data"]["execution_id"] == ids["execution_id"]
    assert "stopped without finishing" in event["data"]["error"]
    assert (
        replacement.test_client()
        .get(f"/admin/executions/{ids['execution_id']}", headers=ENGINE_AUTH)
        .get_json()["status"]
        == "interrupted"
    )
