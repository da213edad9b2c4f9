"""Sentry in process, against a local fake ingest: what is sent, what never is."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sentry_sdk
from flask import Flask

from app.config import load_settings
from app.db import get_db
from app.sentry import before_send_transaction, init_sentry, sample_traced_requests
from app.sentry_requests import SentryRequests
from tests.conftest import GITHUB_SECRET, github_headers, trigger_document
from tests.fake_sentry import Collector, live_sentry

TOKEN = "sentry-test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = b'{"marker": "body-never-in-sentry"}'

log = logging.getLogger("tests.sentry")


def _events(collector: Collector) -> list[dict[str, Any]]:
    return [e for e in collector.of_type("event") if isinstance(e, dict)]


def _app_with_broken_trigger(make_app: Any, **overrides: Any) -> Flask:
    """An app whose trigger ``broken`` fails to load: its POST is an unhandled error."""
    app: Flask = make_app(admin_token=TOKEN, **overrides)
    client = app.test_client()
    created = client.post("/admin/triggers", json=trigger_document("broken"), headers=AUTH)
    assert created.status_code == 201
    with app.app_context(), get_db().write() as conn:
        conn.execute("UPDATE triggers SET document = '{\"nope\": 1}' WHERE name = 'broken'")
    return app


def test_without_a_dsn_nothing_is_initialised_or_wrapped(make_app: Any) -> None:
    assert init_sentry(load_settings(env={})) is False
    app = make_app()
    assert not sentry_sdk.get_client().is_active()
    assert not isinstance(app.wsgi_app, SentryRequests)


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


def test_client_errors_are_never_sent(make_app: Any) -> None:
    with live_sentry() as collector:
        app = make_app(admin_token=TOKEN)
        client = app.test_client()
        assert client.post("/admin/triggers", json=trigger_document(), headers=AUTH).status_code
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

        response = app.test_client().get("/_test/log", headers={"X-Request-ID": "log-1"})
        assert response.status_code == 200
    (event,) = _events(collector)
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

        client = app.test_client()
        assert client.get("/_test/first").status_code == 200
        assert client.get("/_test/second").status_code == 500
    (event,) = [e for e in _events(collector) if e.get("exception")]
    crumbs = [c.get("message") for c in event.get("breadcrumbs", {}).get("values", [])]
    assert "a warning of the first request" not in crumbs
    assert "first_only" not in event.get("tags", {})


def test_failing_event_stream_ends_with_an_error_event(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.routes.admin import executions as route

    def broken_stream(*_args: Any) -> Any:
        yield "event: status\ndata: {}\n\n"
        raise OSError("store went away")

    monkeypatch.setattr(route, "execution_stream", broken_stream)
    monkeypatch.setattr(route.queue, "status_of", lambda _db, _id: "running")
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
        assert client.post("/admin/triggers", json=trigger_document(), headers=AUTH).status_code
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
    never = _wrapper(0.0)
    assert not never.should_trace({"PATH_INFO": "/webhooks/a", "HTTP_SENTRY_TRACE": "x"})
    always = _wrapper(1.0)
    assert always.should_trace({"PATH_INFO": "/webhooks/a"})
    assert not always.should_trace({"PATH_INFO": "/admin/executions/exe_1/stream"})
    rare = _wrapper(1e-12)
    assert not rare.should_trace({"PATH_INFO": "/webhooks/a"})
    assert rare.should_trace({"PATH_INFO": "/webhooks/a", "HTTP_SENTRY_TRACE": "x"})


def test_sampler_keeps_chosen_requests_and_follows_the_upstream_decision() -> None:
    chosen = {"hookrunner.sentry_traced": True}
    assert sample_traced_requests({"parent_sampled": None, "wsgi_environ": chosen}) == 1.0
    assert sample_traced_requests({"parent_sampled": None, "wsgi_environ": {}}) == 0.0
    assert sample_traced_requests({"parent_sampled": False, "wsgi_environ": chosen}) == 0.0
    assert sample_traced_requests({"parent_sampled": True, "wsgi_environ": {}}) == 1.0


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
