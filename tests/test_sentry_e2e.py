"""Sentry against a local fake ingest: what arrives, and what must never arrive."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from app.store import SQLiteDatabase
from tests.conftest import wait_for
from tests.fake_sentry import fake_sentry
from tests.server import gunicorn_server

pytestmark = pytest.mark.slow

TOKEN = "sentry-e2e-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "trigger-secret-never-in-sentry"
BODY_MARKER = "body-content-never-in-sentry"


def _signed(body: bytes, delivery: str) -> dict[str, str]:
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={mac}",
    }


def _create(base: str, name: str, argv: list[str]) -> None:
    document = {
        "name": name,
        "auth": {"scheme": "github", "secrets": [SECRET]},
        "action": {"type": "command", "argv": argv},
    }
    response = requests.post(f"{base}/admin/triggers", json=document, headers=AUTH, timeout=5)
    assert response.status_code == 201, response.text


def _events(collector: Any) -> list[dict[str, Any]]:
    return [e for e in collector.of_type("event") if isinstance(e, dict)]


def test_sentry_gets_errors_with_context_and_nothing_secret(tmp_path: Path) -> None:
    with fake_sentry() as (collector, dsn):
        env = {"ADMIN_TOKEN": TOKEN, "SENTRY_DSN": dsn, "SENTRY_TRACES_SAMPLE_RATE": "1.0"}
        with gunicorn_server(tmp_path, env=env) as server:
            base = server.base_url
            _create(base, "fails", ["/bin/sh", "-c", "echo going down >&2; exit 2"])
            _create(base, "broken", ["/bin/true"])
            body = json.dumps({"marker": BODY_MARKER}).encode()

            # 1. A failing execution.
            accepted = requests.post(
                f"{base}/webhooks/fails", data=body, headers=_signed(body, "d-1"), timeout=5
            ).json()
            execution_id = accepted["execution_id"]
            url = f"{base}/admin/executions/{execution_id}"
            wait_for(
                lambda: requests.get(url, headers=AUTH, timeout=5).json()["status"] == "failed"
            )

            # 2. 4xx answers: bad signature, unknown trigger, no token.
            bad = {**_signed(body, "d-2"), "X-Hub-Signature-256": "sha256=" + "0" * 64}
            assert (
                requests.post(
                    f"{base}/webhooks/fails", data=body, headers=bad, timeout=5
                ).status_code
                == 401
            )
            assert (
                requests.post(f"{base}/webhooks/missing", data=body, timeout=5).status_code == 404
            )
            assert requests.get(f"{base}/admin/executions", timeout=5).status_code == 401

            # 3. An SSE stream (its transaction must be dropped).
            stream = requests.get(f"{url}/stream", headers=AUTH, timeout=10)
            assert "event: end" in stream.text

            # 4. An unhandled exception: the stored trigger document is corrupted.
            db = SQLiteDatabase(str(tmp_path / "server.db"))
            with db.write() as conn:
                conn.execute("UPDATE triggers SET document = '{\"nope\": 1}' WHERE name = 'broken'")
            crashed = requests.post(
                f"{base}/webhooks/broken",
                data=body,
                headers={**_signed(body, "d-3"), "X-Request-ID": "crash-req-1"},
                timeout=5,
            )
            assert crashed.status_code == 500
            assert crashed.json()["error"]["code"] == "internal_error"

            wait_for(lambda: len(_events(collector)) >= 2)
            wait_for(lambda: collector.of_type("transaction"))
        # The server is stopped: the SDK flushed everything on exit.

    events = _events(collector)
    crash = next(e for e in events if e.get("exception"))
    assert crash["tags"]["request_id"] == "crash-req-1"
    assert crash["exception"]["values"][-1]["type"] == "ValidationError"
    assert crash["transaction"] == "/webhooks/<name>"
    assert crash["request"]["method"] == "POST"
    assert crash["request"]["headers"]["X-Hub-Signature-256"] == "[redacted]"

    failure = next(e for e in events if e.get("tags", {}).get("execution_id") == execution_id)
    assert failure["level"] == "error"
    assert failure["tags"]["trigger"] == "fails"
    assert failure["tags"]["request_id"] == accepted["request_id"]
    crumbs = [
        c["message"]
        for c in failure.get("breadcrumbs", {}).get("values", [])
        if c.get("category") == "execution"
    ]
    assert crumbs == ["received", "verified", "deduped", "queued", "started", "failed"]

    # No 4xx became an event.
    messages = json.dumps(events)
    assert "signature_invalid" not in messages
    assert "trigger_not_found" not in messages
    assert "unauthorized" not in messages

    # Transactions flow, but not those of SSE streams.
    transactions = collector.of_type("transaction")
    names = [t.get("transaction", "") for t in transactions]
    assert "/admin/triggers" in names and "/webhooks/<name>" in names
    assert all(t["tags"].get("request_id") for t in transactions)
    assert not [name for name in names if "stream" in name]

    # Nothing secret anywhere in what was sent.
    everything = collector.all_text()
    for secret in (SECRET, TOKEN, BODY_MARKER, _signed(body, "d-1")["X-Hub-Signature-256"]):
        assert secret not in everything
