"""Sentry in process, against a local fake ingest: what is sent, what never is."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from flask import Flask

from app.context import execution_id_var, request_id_var, trigger_var
from app.execution.control import ExecutionControl
from app.live.streams import LiveStreams
from app.sentry.events import (
    add_event_context,
    before_send,
    before_send_transaction,
    sample_traced_requests,
)
from app.sentry.wsgi import SentryRequests, upstream_decision
from app.store import get_db
from tests.conftest import GITHUB_SECRET, github_headers, trigger_document
from tests.fake_sentry import Collector, live_sentry
from tests.server import PROJECT_ROOT

TOKEN = "sentry-test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = b'{"marker": "body-never-in-sentry"}'

log = logging.getLogger("tests.sentry")

TRACE_ID, SPAN_ID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def _events(collector: Collector) -> list[dict[str, Any]]:
    return [e for e in collector.of_type("event") if isinstance(e, dict)]


def _break_trigger(app: Flask, name: str) -> None:
    """Corrupt a stored trigger so that a POST to it is an unhandled error."""
    with app.app_context(), get_db().write() as conn:
        conn.execute("UPDATE triggers SET document = '{\"nope\": 1}' WHERE name = ?", (name,))


def _app_with_broken_trigger(make_app: Any, **overrides: Any) -> Flask:
    """An app whose trigger ``broken`` fails to load: its POST is an unhandled error."""
    app: Flask = make_app(admin_token=TOKEN, **overrides)
    client = app.test_client()
    created = client.post("/admin/triggers", json=trigger_document("broken"), headers=AUTH)
    assert created.status_code == 201
    _break_trigger(app, "broken")
    return app


def test_without_a_dsn_nothing_is_initialised_patched_or_wrapped(tmp_path: Path) -> None:
    """In a fresh interpreter, as a worker imports ``run``: no SDK work at all."""
    probe = textwrap.dedent(
        """
        import json, logging, sys, threading
        original_start = threading.Thread.start
        original_call_handlers = logging.Logger.callHandlers
        import run
        import sentry_sdk
        print(json.dumps({
            "active": sentry_sdk.get_client().is_active(),
            "wrapped": type(run.app.wsgi_app).__name__,
            "sentry_handlers": [type(h).__name__ for h in logging.getLogger().handlers
                                if type(h).__module__.startswith("sentry_sdk")],
            "thread_start_patched": threading.Thread.start is not original_start,
            "logging_patched": logging.Logger.callHandlers is not original_call_handlers,
            "excepthook_patched": sys.excepthook is not sys.__excepthook__,
            "wsgi_middleware_loaded": "sentry_sdk.integrations.wsgi" in sys.modules,
        }))
        """
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'probe.db'}",
        "SENTRY_DSN": "",
        "SCHEDULER_ENABLED": "0",
        "ENGINE_ENABLED": "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "active": False,
        "wrapped": "method",
        "sentry_handlers": [],
        "thread_start_patched": False,
        "logging_patched": False,
        "excepthook_patched": False,
        "wsgi_middleware_loaded": False,
    }


def test_unhandled_error_is_sent_with_its_request_and_request_id(make_app: Any) -> None:
    with live_sentry() as collector:
        app = _app_with_broken_trigger(make_app)
        response = app.test_client().post(
            "/webhooks/broken?token=query-secret-never-in-sentry",
            data=BODY,
            headers={**github_headers(BODY, "d-1"), "X-Request-ID": "crash-1"},
        )
        assert response.status_code == 500
        assert response.get_json()["error"]["code"] == "internal_error"

        assert not sentry_sdk.get_client().should_send_default_pii()

    (event,) = [e for e in _events(collector) if e.get("exception")]
    assert event["exception"]["values"][-1]["type"] == "ValidationError"
    assert event["tags"]["request_id"] == "crash-1"
    assert event["transaction"] == "/webhooks/<name>"
    request = event["request"]
    assert request["method"] == "POST"
    assert request["url"].endswith("/webhooks/broken")
    assert "query_string" not in request  # webhook senders put tokens there
    assert "data" not in request
    assert request["headers"]["X-Hub-Signature-256"] == "[redacted]"
    assert request["headers"]["X-Github-Delivery"] == "d-1"
    sent = collector.all_text()
    for secret in ("query-secret-never-in-sentry", "body-never-in-sentry", GITHUB_SECRET):
        assert secret not in sent
    assert github_headers(BODY, "d-1")["X-Hub-Signature-256"] not in sent


def test_webhook_headers_keep_only_harmless_values(make_app: Any) -> None:
    """A trigger may name any header for its secret: only known-harmless values are sent."""
    document = trigger_document(
        "tokened", auth={"scheme": "token", "header": "X-Auth", "secrets": ["shared-token-x1"]}
    )
    with live_sentry() as collector:
        app = make_app(admin_token=TOKEN)
        client = app.test_client()
        assert client.post("/admin/triggers", json=document, headers=AUTH).status_code == 201
        _break_trigger(app, "tokened")
        headers = {
            "Content-Type": "application/json",
            "X-Auth": "shared-token-x1",
            "X-Forwarded-For": "203.0.113.7",
            "X-GitHub-Event": "push",
        }
        assert client.post("/webhooks/tokened", data=BODY, headers=headers).status_code == 500
    (event,) = [e for e in _events(collector) if e.get("exception")]
    sent = event["request"]["headers"]
    assert sent["X-Auth"] == "[redacted]"
    assert sent["X-Forwarded-For"] == "[redacted]"
    assert sent["X-Github-Event"] == "push"
    assert sent["Content-Type"] == "application/json"
    assert "shared-token-x1" not in collector.all_text()
    assert "203.0.113.7" not in collector.all_text()


def test_client_errors_are_never_sent(make_app: Any) -> None:
    with live_sentry() as collector:
        app = make_app(admin_token=TOKEN)
        client = app.test_client()
        assert (
            client.post("/admin/triggers", json=trigger_document(), headers=AUTH).status_code == 201
        )
        bad = {**github_headers(BODY, "d-2"), "X-Hub-Signature-256": "sha256=" + "0" * 64}
        assert client.post("/webhooks/deploy", data=BODY, headers=bad).status_code == 401
        assert client.post("/webhooks/missing", data=BODY).status_code == 404
        assert client.get("/admin/executions").status_code == 401
        assert client.post("/admin/triggers", json={"name": "x"}, headers=AUTH).status_code == 422
        assert client.get("/no/such/route").status_code == 404
    assert collector.items() == []


def test_error_lines_become_events_info_lines_do_not(make_app: Any) -> None:
    with live_sentry() as collector:
        app = make_app()

        @app.get("/_test/log")
        def log_twice() -> str:
            log.info("routine line never sent")
            log.error("the disk is full")
            return "ok"

        headers = {"X-Request-ID": "log-1", "X-Real-IP": "198.51.100.9", "Accept": "text/plain"}
        response = app.test_client().get("/_test/log", headers=headers)
        assert response.status_code == 200
    (event,) = _events(collector)
    assert event["request"]["headers"]["X-Real-Ip"] == "[redacted]"  # no personal data
    assert event["request"]["headers"]["Accept"] == "text/plain"
    assert event["logentry"]["formatted"] == "the disk is full"
    assert event["level"] == "error"
    assert event["tags"]["request_id"] == "log-1"
    assert event["transaction"] == "/_test/log"
    assert "routine line never sent" not in collector.all_text()


def test_breadcrumbs_and_tags_stay_with_their_request(make_app: Any) -> None:
    """Requests served one after another in one context (a keep-alive connection)."""
    with live_sentry() as collector:
        app = make_app()

        @app.get("/_test/first")
        def first() -> str:
            sentry_sdk.set_tag("first_only", "yes")
            log.warning("a warning of the first request")
            return "ok"

        @app.get("/_test/second")
        def second() -> str:
            raise RuntimeError("second request fails")

        @app.get("/_test/third")
        def third() -> str:
            raise RuntimeError("third request fails")

        client = app.test_client()
        assert client.get("/_test/first").status_code == 200
        assert client.get("/_test/second").status_code == 500
        assert client.get("/_test/third").status_code == 500
    second, third_event = [e for e in _events(collector) if e.get("exception")]
    crumbs = [c.get("message") for c in second.get("breadcrumbs", {}).get("values", [])]
    assert "a warning of the first request" not in crumbs
    assert "first_only" not in second.get("tags", {})
    # Each request is its own trace, not one trace per connection.
    assert second["contexts"]["trace"]["trace_id"] != third_event["contexts"]["trace"]["trace_id"]


def test_what_a_stream_does_stays_with_its_stream(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def chatty_stream(*_args: Any) -> Any:
        sentry_sdk.set_tag("stream_only", "yes")
        log.warning("a warning while streaming")
        yield "event: end\ndata: {}\n\n"

    monkeypatch.setattr(LiveStreams, "execution", chatty_stream)
    monkeypatch.setattr(ExecutionControl, "require", lambda _self, _id: "succeeded")
    with live_sentry() as collector:
        app = make_app(admin_token=TOKEN)

        @app.get("/_test/fails")
        def fails() -> str:
            raise RuntimeError("after the stream")

        client = app.test_client()
        assert client.get("/admin/executions/exe_x/stream", headers=AUTH).status_code == 200
        assert client.get("/_test/fails").status_code == 500
    (event,) = [e for e in _events(collector) if e.get("exception")]
    crumbs = [c.get("message") for c in event.get("breadcrumbs", {}).get("values", [])]
    assert "a warning while streaming" not in crumbs
    assert "stream_only" not in event.get("tags", {})


def test_failing_event_stream_ends_with_an_error_event(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_stream(*_args: Any) -> Any:
        yield "event: status\ndata: {}\n\n"
        raise OSError("store went away")

    monkeypatch.setattr(LiveStreams, "execution", broken_stream)
    monkeypatch.setattr(ExecutionControl, "require", lambda _self, _id: "running")
    with live_sentry() as collector:
        app = make_app(admin_token=TOKEN)
        response = app.test_client().get(
            "/admin/executions/exe_x/stream", headers={**AUTH, "X-Request-ID": "sse-1"}
        )
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "event: status\ndata: {}\n\n"
    (event,) = _events(collector)
    assert event["logentry"]["formatted"] == "event stream failed"
    assert event["exception"]["values"][-1]["type"] == "OSError"
    assert event["tags"]["request_id"] == "sse-1"
    assert event["request"]["headers"]["Authorization"] == "[redacted]"
    assert TOKEN not in collector.all_text()


def test_traced_request_is_named_after_its_route_and_tagged(make_app: Any) -> None:
    with live_sentry(traces_sample_rate=1.0) as collector:
        app = make_app(admin_token=TOKEN, sentry_traces_sample_rate=1.0)
        client = app.test_client()
        assert (
            client.post("/admin/triggers", json=trigger_document(), headers=AUTH).status_code == 201
        )
        response = client.get("/admin/triggers/deploy", headers={**AUTH, "X-Request-ID": "tr-1"})
        assert response.status_code == 200
    transactions = collector.of_type("transaction")
    (traced,) = [t for t in transactions if t["tags"].get("request_id") == "tr-1"]
    assert traced["transaction"] == "/admin/triggers/<name>"
    assert traced["contexts"]["trace"]["status"] == "ok"
    assert traced["request"]["headers"]["Authorization"] == "[redacted]"
    assert TOKEN not in collector.all_text()
    assert GITHUB_SECRET not in collector.all_text()


def _wrapper(rate: float) -> SentryRequests:
    return SentryRequests(lambda environ, start_response: [b""], rate)


def test_trace_decision_is_taken_before_any_tracing_work() -> None:
    upstream_yes = f"{TRACE_ID}-{SPAN_ID}-1"
    upstream_no = f"{TRACE_ID}-{SPAN_ID}-0"
    never = _wrapper(0.0)
    assert not never.should_trace(
        {"PATH_INFO": "/admin/triggers", "HTTP_SENTRY_TRACE": upstream_yes}
    )
    always = _wrapper(1.0)
    assert always.should_trace({"PATH_INFO": "/webhooks/a"})
    assert not always.should_trace({"PATH_INFO": "/admin/executions/exe_1/stream"})
    assert not always.should_trace(
        {"PATH_INFO": "/admin/triggers", "HTTP_SENTRY_TRACE": upstream_no}
    )
    rare = _wrapper(1e-12)
    assert not rare.should_trace({"PATH_INFO": "/webhooks/a"})
    assert rare.should_trace({"PATH_INFO": "/admin/triggers", "HTTP_SENTRY_TRACE": upstream_yes})


@pytest.mark.parametrize(
    "header",
    [
        f"{TRACE_ID}-{SPAN_ID}-1",  # anyone may send a yes
        f"{TRACE_ID}-{SPAN_ID}",  # no decision
        "x",  # malformed
    ],
)
def test_a_sender_cannot_force_tracing(header: str) -> None:
    rare = _wrapper(1e-12)
    assert not rare.should_trace({"PATH_INFO": "/webhooks/a", "HTTP_SENTRY_TRACE": header})
    if upstream_decision(header) is None:
        assert not rare.should_trace({"PATH_INFO": "/admin/triggers", "HTTP_SENTRY_TRACE": header})


def test_sampler_keeps_exactly_the_chosen_requests() -> None:
    chosen = {"hookrunner.sentry_traced": True}
    assert sample_traced_requests({"parent_sampled": None, "wsgi_environ": chosen}) == 1.0
    assert sample_traced_requests({"parent_sampled": False, "wsgi_environ": chosen}) == 1.0
    assert sample_traced_requests({"parent_sampled": None, "wsgi_environ": {}}) == 0.0
    assert sample_traced_requests({"parent_sampled": True}) == 1.0  # not a request


def test_server_error_lines_lose_their_query_strings() -> None:
    event = {
        "logger": "gunicorn.error",
        "logentry": {
            "message": "Error handling request %s %s",
            "formatted": "Error handling request POST /webhooks/a?token=s3cr3t",
            "params": ["POST", "/webhooks/a?token=s3cr3t"],
        },
    }
    sent = before_send(event, {})
    assert sent is not None
    assert "s3cr3t" not in json.dumps(sent)
    assert sent["logentry"]["params"] == ["POST", "/webhooks/a?[redacted]"]


def test_events_outside_an_execution_scope_still_name_the_execution() -> None:
    tokens = (
        execution_id_var.set("exe_42"),
        trigger_var.set("deploy"),
        request_id_var.set("req-42"),
    )
    try:
        event = add_event_context({"tags": {"request_id": "scope-tag-wins"}}, {})
    finally:
        execution_id_var.reset(tokens[0])
        trigger_var.reset(tokens[1])
        request_id_var.reset(tokens[2])
    assert event["tags"] == {
        "request_id": "scope-tag-wins",
        "execution_id": "exe_42",
        "trigger": "deploy",
    }
    assert "request" not in event


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("/admin/executions/<execution_id>/stream", False),
        ("/admin/stream", False),
        ("/admin/triggers/<name>", True),
        ("/webhooks/<name>", True),
    ],
)
def test_stream_transactions_are_dropped(name: str, kept: bool) -> None:
    assert (before_send_transaction({"transaction": name}, {}) is not None) is kept
