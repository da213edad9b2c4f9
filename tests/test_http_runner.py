"""The HTTP forward runner against real local servers (no network mocks)."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from app.config import Settings, load_settings
from app.execution.runners.base import RunContext, RunResult
from app.execution.runners.http import run_http, signing_key
from app.outbound import client as outbound
from app.outbound.breakers import BreakerRegistry, destination_of
from app.triggers.schema import HttpAction
from app.triggers.templates import template_context
from tests.conftest import wait_for


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok\n"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    barrier: threading.Barrier | None = None  # requests that must be in flight together


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads: nothing outlives a test

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Recorded] = []
        self.reply = Reply()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout, truncation) is expected here


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.requests.append(Recorded(self.command, self.path, headers, body))
        reply = self.server.reply
        time.sleep(reply.delay)
        status = reply.status
        if reply.barrier is not None:
            try:
                reply.barrier.wait()
            except threading.BrokenBarrierError:
                status = 500
        self.send_response(status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Callable[[], _Server]]:
    started: list[tuple[_Server, threading.Thread]] = []

    def start() -> _Server:
        srv = _Server()
        thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        started.append((srv, thread))
        return srv

    try:
        yield start
    finally:
        registry.drain()
        outbound.clear_pools()
        for srv, thread in started:
            srv.shutdown()
            thread.join()
            srv.server_close()


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    registry.reset()
    yield
    registry.reset()
    outbound.clear_pools()


registry = BreakerRegistry()  # this module's breakers, as one app's


class ListSink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def line(self, stream: str, text: str) -> None:
        self.lines.append((stream, text))

    def system(self, text: str) -> None:
        self.lines.append(("system", text))


def settings(**changes: Any) -> Settings:
    return dataclasses.replace(load_settings(env={}), **{"allow_private_targets": True, **changes})


def context(**changes: Any) -> RunContext:
    body = {"ref": "refs/heads/main", "after": "abc123"}
    values: dict[str, Any] = {
        "execution_id": "exe_0001",
        "delivery_id": "dlv_0001",
        "trigger": "deploy",
        "request_id": "req-123",
        "raw_body": json.dumps(body).encode(),
        "content_type": "application/json",
        "template_context": template_context(
            body=body,
            headers={"x-github-event": "push"},
            query={},
            trigger="deploy",
            delivery_id="dlv_0001",
        ),
        "secrets": ["topsecret"],
        "output": ListSink(),
        "settings": settings(),
    }
    values.update(changes)
    registry.configure(values["settings"])  # the app configures its registry once
    return RunContext(**values, breakers=registry)


def action(url: str, **fields: Any) -> HttpAction:
    return HttpAction.model_validate({"type": "http", "url": url, **fields})


def run(url: str, ctx: RunContext | None = None, **fields: Any) -> tuple[RunResult, ListSink]:
    ctx = ctx or context()
    result = run_http(action(url, **fields), ctx)
    assert isinstance(ctx.output, ListSink)
    return result, ctx.output


def test_forwards_original_body_with_content_type_and_request_id(server: Any) -> None:
    srv = server()
    srv.reply = Reply(body=b"first\nsecond\n")
    result, sink = run(f"{srv.base}/hook")
    assert result.status == "succeeded", result.error
    [request] = srv.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.body == context().raw_body
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-request-id"] == "req-123"
    assert request.headers["user-agent"] == "Hookrunner"
    assert "webhook-signature" not in request.headers
    assert re.fullmatch(rf"POST {srv.base}/hook -> 200 \(\d+ ms\)", sink.lines[0][1])
    assert sink.lines[1:] == [("stdout", "first"), ("stdout", "second")]
    http = result.details["http"]
    assert http["method"] == "POST" and http["url"] == f"{srv.base}/hook"
    assert (http["status"], http["response_bytes"], http["truncated"]) == (200, 13, False)
    assert isinstance(http["elapsed_ms"], int)


def test_templated_body_and_headers(server: Any) -> None:
    srv = server()
    result, _ = run(
        f"{srv.base}/deploy/{{{{body.after}}}}",
        method="PUT",
        body='{"ref": "{{ body.ref }}", "event": "{{ headers["x-github-event"] }}"}',
        headers={"Content-Type": "application/json", "X-Trigger": "{{ trigger }}"},
    )
    assert result.status == "succeeded", result.error
    [request] = srv.requests
    assert (request.method, request.path) == ("PUT", "/deploy/abc123")
    assert json.loads(request.body) == {"ref": "refs/heads/main", "event": "push"}
    assert request.headers["x-trigger"] == "deploy"
    assert request.headers["content-type"] == "application/json"


def test_get_without_body_template_sends_no_body(server: Any) -> None:
    srv = server()
    result, _ = run(f"{srv.base}/ping", method="GET")
    assert result.status == "succeeded"
    [request] = srv.requests
    assert request.body == b""
    assert "content-type" not in request.headers


def test_standard_webhooks_signature_verifies(server: Any) -> None:
    srv = server()
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    result, _ = run(f"{srv.base}/signed", signing_secret=secret)
    assert result.status == "succeeded", result.error
    [request] = srv.requests
    assert request.headers["webhook-id"] == "dlv_0001"
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload == {"ref": "refs/heads/main", "after": "abc123"}
    assert secret not in json.dumps(result.details)


def test_non_base64_secret_signs_with_its_utf8_bytes(server: Any) -> None:
    srv = server()
    result, _ = run(f"{srv.base}/signed", signing_secret="not base64!")
    assert result.status == "succeeded"
    assert signing_key("not base64!") == b"not base64!"
    [request] = srv.requests
    Webhook(b"not base64!").verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("scheme", "host"), [("http", "127.0.0.1"), ("http", "localhost"), ("https", "localhost")]
)
def test_private_destination_refused(server: Any, scheme: str, host: str) -> None:
    srv = server()
    port = srv.server_address[1]
    ctx = context(settings=settings(allow_private_targets=False))
    result, _ = run(f"{scheme}://{host}:{port}/hook", ctx)
    assert result.status == "failed" and result.retryable is False
    assert result.error is not None
    assert "127.0.0.1" in result.error and "ALLOW_PRIVATE_TARGETS=1" in result.error
    assert srv.requests == []
    assert registry.states() == {f"{scheme}://{host}:{port}": "closed"}  # not a failure


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("0.0.0.0", False),  # noqa: S104 - a value under test, not a bind
        ("224.0.0.1", False),
        ("ff02::1", False),
        ("100.64.0.1", False),
        ("192.0.0.8", False),  # IETF protocol block (some Pythons call it global)
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::a00:1", False),  # local-use NAT64
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("::7f00:1", False),  # IPv4-compatible, deprecated
    ],
)
def test_global_address_rule(address: str, allowed: bool) -> None:
    assert outbound.is_global_address(address) is allowed


def test_redirect_not_followed(server: Any) -> None:
    srv, target = server(), server()
    srv.reply = Reply(status=302, headers={"Location": f"{target.base}/elsewhere"}, body=b"")
    result, _ = run(f"{srv.base}/hook")
    assert result.status == "failed" and result.retryable is False
    assert result.error is not None and "redirects are not followed" in result.error
    assert result.details["http"]["status"] == 302
    assert len(srv.requests) == 1
    assert target.requests == []


def test_response_capped_with_truncation_notice(server: Any) -> None:
    srv = server()
    srv.reply = Reply(body=b"abcdefghij" * 100)
    result, sink = run(f"{srv.base}/hook", max_response_bytes=25)
    assert result.status == "succeeded"
    assert ("stdout", "abcdefghijabcdefghijabcde") in sink.lines
    assert sink.lines[-1] == ("system", "response truncated at 25 bytes")
    assert result.details["http"]["truncated"] is True
    assert result.details["http"]["response_bytes"] == 25


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (408, True), (404, False)]
)
def test_error_statuses(server: Any, status: int, retryable: bool) -> None:
    srv = server()
    srv.reply = Reply(status=status)
    result, _ = run(f"{srv.base}/hook")
    assert result.status == "failed"
    assert result.retryable is retryable
    assert result.error == f"HTTP {status} from {srv.base}/hook"


def test_read_timeout_is_retryable(server: Any) -> None:
    srv = server()
    srv.reply = Reply(delay=0.6)
    result, _ = run(f"{srv.base}/slow", timeout_seconds=0.2)
    assert result.status == "failed" and result.retryable is True
    assert result.error is not None
    assert "ReadTimeoutError" in result.error and "127.0.0.1" in result.error


def test_connection_refused_is_retryable(server: Any) -> None:
    srv = server()
    base = srv.base
    srv.shutdown()  # nothing listens on the port any more once closed
    srv.server_close()
    result, _ = run(f"{base}/hook")
    assert result.status == "failed" and result.retryable is True
    assert result.error is not None and "127.0.0.1" in result.error


def test_secrets_masked_in_output_and_details(server: Any) -> None:
    srv = server()
    result, sink = run(f"{srv.base}/hook?token=topsecret", signing_secret="whsec_dG9wc2VjcmV0")
    assert result.status == "succeeded"
    shown = json.dumps([sink.lines, result.details])
    assert "topsecret" not in shown and "[redacted]" in shown
    assert srv.requests[0].path == "/hook?token=topsecret"


def test_breaker_opens_fails_fast_and_alerts(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.outbound.breakers")
    srv, alerts = server(), server()
    srv.reply = Reply(status=500)
    ctx_settings = settings(
        breaker_fail_max=3, breaker_reset_seconds=60, alert_webhook_url=f"{alerts.base}/alert"
    )
    for _ in range(3):
        result, _ = run(f"{srv.base}/hook", context(settings=ctx_settings))
        assert result.error == f"HTTP 500 from {srv.base}/hook"
    destination = destination_of(srv.base)
    assert registry.states() == {destination: "open"}
    for _ in range(2):
        result, sink = run(f"{srv.base}/hook", context(settings=ctx_settings))
        assert result.status == "failed" and result.retryable is True
        assert result.error is not None and "circuit breaker open" in result.error
        assert sink.lines == [("system", f"POST {srv.base}/hook -> not sent: circuit breaker open")]
    assert len(srv.requests) == 3

    [record] = [r for r in caplog.records if getattr(r, "destination", None) == destination]
    assert record.levelno == logging.WARNING
    assert (record.from_state, record.to_state) == ("closed", "open")  # type: ignore[attr-defined]
    registry.drain()
    [alert] = alerts.requests
    event = json.loads(alert.body)
    assert alert.headers["content-type"] == "application/json"
    assert {k: event[k] for k in ("event", "destination", "from", "to")} == {
        "event": "breaker_state_changed",
        "destination": destination,
        "from": "closed",
        "to": "open",
    }
    assert event["at"].endswith("Z")


def test_breaker_half_opens_after_reset_timeout(server: Any) -> None:
    srv = server()
    srv.reply = Reply(status=503)
    ctx_settings = settings(breaker_fail_max=1, breaker_reset_seconds=0.2)
    destination = destination_of(srv.base)
    assert run(f"{srv.base}/a", context(settings=ctx_settings))[0].status == "failed"
    assert registry.states() == {destination: "open"}
    time.sleep(0.3)
    result, _ = run(f"{srv.base}/a", context(settings=ctx_settings))  # trial call fails
    assert result.error == f"HTTP 503 from {srv.base}/a"
    assert registry.states() == {destination: "open"}
    time.sleep(0.3)
    srv.reply = Reply(status=200)
    assert run(f"{srv.base}/a", context(settings=ctx_settings))[0].status == "succeeded"
    assert registry.states() == {destination: "closed"}
    assert len(srv.requests) == 3


def test_client_errors_do_not_trip_the_breaker(server: Any) -> None:
    srv = server()
    srv.reply = Reply(status=404)
    ctx_settings = settings(breaker_fail_max=1)
    for _ in range(3):
        run(f"{srv.base}/missing", context(settings=ctx_settings))
    assert len(srv.requests) == 3
    assert registry.states() == {destination_of(srv.base): "closed"}


def test_template_error_fails_without_retry(server: Any) -> None:
    srv = server()
    result, _ = run(f"{srv.base}/hook", body="{{ body.missing }}")
    assert result.status == "failed" and result.retryable is False
    assert result.error is not None and "missing" in result.error
    assert srv.requests == []


def test_header_rendering_to_a_line_break_is_refused(server: Any) -> None:
    srv = server()
    ctx = context(template_context={"body": {"x": "a\r\nInjected: 1"}})
    result, _ = run(f"{srv.base}/hook", ctx, headers={"X-Value": "{{ body.x }}"})
    assert result.status == "failed" and result.retryable is False
    assert srv.requests == []


def test_cancelled_before_start(server: Any) -> None:
    srv = server()
    ctx = context()
    ctx.cancelled.set()
    result, _ = run(f"{srv.base}/hook", ctx)
    assert result.status == "cancelled"
    assert srv.requests == []


def test_guard_counts_only_listed_failures_and_alerts_reach_private_urls(server: Any) -> None:
    alerts = server()
    registry.configure(
        settings(
            allow_private_targets=False,  # the alert URL is operator config: still allowed
            breaker_fail_max=1,
            alert_webhook_url=f"{alerts.base}/alert",
        )
    )
    breaker = registry.get("https://example.test:443")

    def boom() -> None:
        raise KeyError("not a destination failure")

    for _ in range(3):
        with pytest.raises(KeyError):
            breaker.guard(boom, failures=(ConnectionError,))
    assert breaker.current_state == "closed"

    def down() -> None:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        breaker.guard(down, failures=(ConnectionError,))
    assert registry.states() == {"https://example.test:443": "open"}
    registry.drain()
    [alert] = alerts.requests
    assert json.loads(alert.body)["destination"] == "https://example.test:443"


def test_concurrent_forwards_to_one_destination_are_not_serialised(server: Any) -> None:
    srv = server()
    srv.reply = Reply(barrier=threading.Barrier(2, timeout=5))
    results: list[RunResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(run(f"{srv.base}/hook")[0]))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status for r in results] == ["succeeded", "succeeded"]


def test_with_sentry_on_forwards_carry_no_trace_headers_and_urls_stay_out(server: Any) -> None:
    import sentry_sdk

    from tests.fake_sentry import live_sentry

    srv = server()
    srv.reply = Reply(status=500)
    with (
        live_sentry(traces_sample_rate=1.0) as collector,
        sentry_sdk.isolation_scope(),
        sentry_sdk.start_transaction(name="execution", sampled=True),
    ):
        result, _ = run(f"{srv.base}/hook?token=url-secret-never-in-sentry")
        sentry_sdk.capture_message("after the forward")
    assert result.status == "failed"
    [request] = srv.requests
    assert "sentry-trace" not in request.headers
    assert "baggage" not in request.headers
    assert collector.of_type("event")  # the message above was sent ...
    assert "url-secret-never-in-sentry" not in collector.all_text()  # ... without the URL


def test_webhook_id_is_the_same_on_retries_and_reruns_and_new_on_a_replay(
    server: Any, make_app: Any
) -> None:
    srv = server()
    srv.reply = Reply(status=408)  # every attempt fails retryably (and trips no breaker)
    token = "engine-test-token-0123456789"
    app = make_app(engine_enabled=True, admin_token=token, allow_private_targets=True)
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    document = {
        "name": "forward",
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": {"type": "http", "url": f"{srv.base}/hook", "signing_secret": secret},
        "retry": {"max_attempts": 2, "backoff_seconds": 0},
    }
    assert client.post("/admin/triggers", json=document, headers=auth).status_code == 201
    accepted = client.post("/webhooks/forward", json={"n": 1}).get_json()

    wait_for(lambda: len(srv.requests) == 2)  # the first attempt and its retry
    rerun = client.post(f"/admin/executions/{accepted['execution_id']}/rerun", headers=auth)
    assert rerun.status_code == 202
    wait_for(lambda: len(srv.requests) == 4)  # the rerun and its retry
    replayed = client.post(f"/admin/deliveries/{accepted['delivery_id']}/replay", headers=auth)
    assert replayed.status_code == 202
    wait_for(lambda: len(srv.requests) == 6)  # the replay and its retry

    ids = [request.headers["webhook-id"] for request in srv.requests]
    assert ids[:4] == [accepted["delivery_id"]] * 4
    assert ids[4:] == [replayed.get_json()["delivery_id"]] * 2
    assert ids[4] != accepted["delivery_id"]
    for request in srv.requests:  # each still verifies with its own id
        assert Webhook(secret).verify(request.body, request.headers) == {"n": 1}
