"""Debian's nginx running docs/deploy/nginx.conf in front of a real Gunicorn Hookrunner.

The shipped file is the source of truth: it is included as it is into a small wrapper
config (daemon off, pid, logs and temporary files in a temp dir), with only the upstream
address, the port-80 listen lines and the log directory replaced. Every request below goes
through nginx.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from app.config import Settings
from tests.conftest import github_headers, trigger_document, wait_for
from tests.server import PROJECT_ROOT, Server, free_port, gunicorn_server


def _find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


NGINX = _find_nginx()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NGINX is None,
        reason="nginx is not installed (Debian: apt-get install nginx); "
        "docs/deploy/nginx.conf is not exercised",
    ),
]

SHIPPED_CONF = PROJECT_ROOT / "docs" / "deploy" / "nginx.conf"
TOKEN = "nginx-e2e-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = Settings().max_body_bytes  # Hookrunner's default, 1 MiB


@dataclass
class Proxied:
    """Hookrunner behind nginx: ``base_url`` is nginx's."""

    base_url: str
    server: Server
    tmp: Path

    @property
    def access_log(self) -> Path:
        return self.tmp / "logs" / "hookrunner.access.log"

    def hookrunner_access(self, request_id: str) -> list[dict[str, Any]]:
        """Hookrunner's own access lines (from Gunicorn's log) for one request id."""
        records = [json.loads(line) for line in self.server.log_lines() if line.startswith("{")]
        return [
            r
            for r in records
            if r.get("logger") == "hookrunner.access" and r.get("request_id") == request_id
        ]


def render_conf(text: str, upstream: str, port: int, log_dir: Path) -> str:
    """The shipped config pointed at this test's Gunicorn, port and log directory."""
    replacements = [
        ("server 127.0.0.1:8000;", f"server {upstream};", 1),
        ("listen 80;", f"listen 127.0.0.1:{port};", 1),
        ("    listen [::]:80;\n", "", 1),  # IPv6 may be absent in a container
        ("/var/log/nginx/", f"{log_dir}/", 2),
    ]
    for old, new, count in replacements:
        assert text.count(old) == count, f"{SHIPPED_CONF} no longer has {old!r} {count}x"
        text = text.replace(old, new)
    return text


def wrapper_conf(tmp: Path, site: Path) -> str:
    """A whole nginx.conf around the site file, as Debian's includes conf.d/*.conf."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # nginx's default would be nobody
    return f"""{user}daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    # What Debian's /etc/nginx/nginx.conf sets for every site.
    sendfile on;
    tcp_nopush on;
    gzip on;
    default_type application/octet-stream;
    access_log {tmp}/logs/access.log;
    client_body_temp_path {tmp}/temp/client_body;
    proxy_temp_path {tmp}/temp/proxy;
    fastcgi_temp_path {tmp}/temp/fastcgi;
    uwsgi_temp_path {tmp}/temp/uwsgi;
    scgi_temp_path {tmp}/temp/scgi;
    include {site};
}}
"""


def _nginx_args(tmp: Path) -> list[str]:
    assert NGINX is not None
    return [NGINX, "-p", f"{tmp}/", "-e", f"{tmp}/logs/error.log", "-c", f"{tmp}/nginx.conf"]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    tmp = tmp_path_factory.mktemp("nginx-e2e")
    (tmp / "logs").mkdir()
    (tmp / "temp").mkdir()
    env = {"ADMIN_TOKEN": TOKEN, "MAX_BODY_BYTES": str(MAX_BODY), "SENTRY_DSN": ""}
    with gunicorn_server(tmp, env=env) as server:
        port = free_port()
        site = tmp / "conf.d" / "hookrunner.conf"
        site.parent.mkdir()
        upstream = server.base_url.removeprefix("http://")
        site.write_text(render_conf(SHIPPED_CONF.read_text(), upstream, port, tmp / "logs"))
        (tmp / "nginx.conf").write_text(wrapper_conf(tmp, site))
        checked = subprocess.run(
            [*_nginx_args(tmp), "-t"], capture_output=True, text=True, timeout=30, check=False
        )
        assert checked.returncode == 0, checked.stderr
        with (tmp / "logs" / "nginx.out").open("wb") as out:
            nginx = subprocess.Popen(_nginx_args(tmp), stdout=out, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                if nginx.poll() is not None:
                    raise AssertionError((tmp / "logs" / "error.log").read_text())
                return _answers(f"{base_url}/healthz")

            wait_for(ready, timeout=30, interval=0.05)
            yield Proxied(base_url, server, tmp)
        finally:
            nginx.terminate()
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()


def _create_trigger(proxied: Proxied, name: str, argv: list[str]) -> None:
    document = trigger_document(name, action={"type": "command", "argv": argv})
    response = requests.post(
        f"{proxied.base_url}/admin/triggers", json=document, headers=AUTH, timeout=10
    )
    assert response.status_code == 201, response.text


def _send(
    proxied: Proxied, name: str, body: Any, signed_body: bytes, **headers: str
) -> requests.Response:
    """POST a GitHub-signed webhook (``signed_body`` is what was signed) through nginx."""
    all_headers = {**github_headers(signed_body, str(uuid.uuid4())), **headers}
    return requests.post(
        f"{proxied.base_url}/webhooks/{name}", data=body, headers=all_headers, timeout=30
    )


def _json_body(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes."""
    head, tail = b'{"after": "nginx-e2e", "pad": "', b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


def _chunks(body: bytes) -> Iterator[bytes]:
    """The body as a generator: requests then sends it chunked, with no Content-Length."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


def _status(proxied: Proxied, execution_id: str) -> str:
    url = f"{proxied.base_url}/admin/executions/{execution_id}"
    return str(requests.get(url, headers=AUTH, timeout=10).json()["status"])


def _events(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream as it arrives into dicts with id, event and data."""
    event: dict[str, Any] = {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw == "":
            if event:
                yield event
            event = {}
        elif raw.startswith("retry: "):
            event["retry"] = raw[7:]
        elif raw.startswith("id: "):
            event["id"] = raw[4:]
        elif raw.startswith("event: "):
            event["event"] = raw[7:]
        elif raw.startswith("data: "):
            event["data"] = json.loads(raw[6:])


@pytest.fixture(scope="module")
def accepting(proxied: Proxied) -> str:
    """A trigger whose executions end at once, for the request tests."""
    _create_trigger(proxied, "nginx-quick", ["/bin/echo", "{{ body.after }}"])
    return "nginx-quick"


def test_live_output_streams_through_nginx_while_the_execution_runs(
    proxied: Proxied, tmp_path: Path
) -> None:
    """A signed webhook's execution streams through nginx line by line: the first `log`
    event reaches the client while the API (also through nginx) still says `running`, and
    all lines arrive in order before `end`. The command cannot finish until the test has
    seen its first line (it waits on a gate file, giving up after 10 s), so a proxy that
    held the stream back would deliver that line only once the execution had succeeded."""
    gate = tmp_path / "gate"
    script = (
        f"echo line1; i=0; while [ ! -f {gate} ] && [ $i -lt 200 ]; do sleep 0.05; "
        "i=$((i+1)); done; for i in 2 3 4 5; do echo line$i; sleep 0.2; done"
    )
    _create_trigger(proxied, "nginx-live", ["/bin/sh", "-c", script])
    body = b'{"after": "live"}'
    accepted = _send(proxied, "nginx-live", body, body)
    assert accepted.status_code == 202, accepted.text
    execution_id = accepted.json()["execution_id"]

    url = f"{proxied.base_url}{accepted.json()['stream_url']}"
    seen: list[dict[str, Any]] = []
    with requests.get(url, headers=AUTH, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        for event in _events(response):
            seen.append(event)
            if event.get("event") == "log" and not gate.exists():
                assert event["data"]["line"] == "line1"
                status = _status(proxied, execution_id)
                assert status == "running", (
                    f"the first line reached the client only when the execution was {status}: "
                    "nginx held the stream back"
                )
                gate.touch()
            if event.get("event") == "end":
                break
    assert gate.exists(), "no log event before the stream ended"
    logs = [(e["id"], e["data"]["line"]) for e in seen if e.get("event") == "log"]
    assert logs == [(str(n), f"line{n}") for n in range(1, 6)]
    assert [e["data"]["status"] for e in seen if e.get("event") == "status"][-1] == "succeeded"
    assert seen[-1]["event"] == "end"


def test_status_feed_is_live_through_nginx(proxied: Proxied, accepting: str) -> None:
    """`GET /admin/stream` never ends, so an event read from it through nginx was not held
    back for the end: its first bytes arrive at once, then the status change of an
    execution started after it opened."""
    with requests.get(
        f"{proxied.base_url}/admin/stream", headers=AUTH, stream=True, timeout=(10, 20)
    ) as response:
        assert response.status_code == 200
        events = _events(response)
        assert "retry" in next(events)  # the feed is open: "now" is fixed
        body = b'{"after": "feed"}'
        accepted = _send(proxied, accepting, body, body)
        assert accepted.status_code == 202, accepted.text
        execution_id = accepted.json()["execution_id"]
        for event in events:
            if event.get("event") == "status" and event["data"]["id"] == execution_id:
                break


def test_body_at_hookrunners_limit_is_accepted(proxied: Proxied, accepting: str) -> None:
    """A signed body of exactly MAX_BODY_BYTES (1 MiB) passes nginx and is accepted."""
    body = _json_body(MAX_BODY)
    response = _send(proxied, accepting, body, body)
    assert response.status_code == 202, response.text[:500]
    assert response.json()["status"] == "accepted"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_hookrunners_limit_gets_hookrunners_json_413(
    proxied: Proxied, accepting: str, framing: str
) -> None:
    """One byte over MAX_BODY_BYTES is refused by Hookrunner, not nginx: the JSON envelope
    with Hookrunner's own message, and Hookrunner's access line for the request. A chunked
    body gets the same answer because nginx buffers request bodies and passes them on with
    a Content-Length (unbuffered, Gunicorn would hand Hookrunner the body cut at the limit,
    and the cut body would fail its signature or be accepted)."""
    body = _json_body(MAX_BODY + 1)
    request_id = f"nginx-e2e-413-{framing}"
    sent = _chunks(body) if framing == "chunked" else body
    response = _send(proxied, accepting, sent, body, **{"X-Request-ID": request_id})
    assert response.status_code == 413, response.text[:500]
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {
            "code": "payload_too_large",
            "message": f"The body is larger than {MAX_BODY} bytes.",
            "request_id": request_id,
        }
    }
    lines = wait_for(lambda: proxied.hookrunner_access(request_id))
    assert [(line["path"], line["status"]) for line in lines] == [(f"/webhooks/{accepting}", 413)]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_nginx_limit_gets_json_not_html(
    proxied: Proxied, accepting: str, framing: str
) -> None:
    """A body over client_max_body_size (2 MiB) never reaches Hookrunner, and nginx answers
    in Hookrunner's error shape, with the request id, instead of its HTML page."""
    body = _json_body(3 * 1024 * 1024)
    request_id = f"nginx-e2e-proxy-413-{framing}"
    sent = _chunks(body) if framing == "chunked" else body
    response = _send(proxied, accepting, sent, body, **{"X-Request-ID": request_id})
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Request-ID"] == request_id
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["request_id"] == request_id
    assert "proxy" in error["message"]
    assert proxied.hookrunner_access(request_id) == []


def test_request_ids_pass_through_nginx_both_ways(proxied: Proxied, accepting: str) -> None:
    """A client's X-Request-ID reaches Hookrunner (its log and its answer) and comes back
    through nginx; without one, or with a malformed one, nginx's own 32-hex id is passed on,
    which Hookrunner keeps (its own would be a dashed UUID). nginx's access line names the
    same id every time."""
    body = b'{"after": "ids"}'
    sent = _send(proxied, accepting, body, body, **{"X-Request-ID": "nginx-e2e-req-7"})
    assert sent.status_code == 202, sent.text
    assert sent.headers["X-Request-ID"] == "nginx-e2e-req-7"
    assert sent.json()["request_id"] == "nginx-e2e-req-7"
    assert wait_for(lambda: proxied.hookrunner_access("nginx-e2e-req-7"))

    anonymous = requests.get(f"{proxied.base_url}/healthz", timeout=10)
    assert anonymous.status_code == 200
    nginx_id = anonymous.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", nginx_id), nginx_id
    assert wait_for(lambda: proxied.hookrunner_access(nginx_id))

    malformed = requests.get(
        f"{proxied.base_url}/healthz", headers={"X-Request-ID": 'a "quoted" id'}, timeout=10
    )
    replaced = malformed.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced), replaced
    assert replaced != nginx_id

    access_log = proxied.access_log
    for request_id in ("nginx-e2e-req-7", nginx_id, replaced):
        assert wait_for(lambda rid=request_id: f"request_id={rid} " in access_log.read_text())


def test_forwarding_headers_reach_hookrunner(proxied: Proxied, accepting: str) -> None:
    """Hookrunner sees the Host the client asked for, X-Forwarded-For with the client's
    address appended, X-Forwarded-Proto, and no Connection header (nginx keeps its upstream
    connections open), as recorded in the stored delivery."""
    body = b'{"after": "forwarded"}'
    response = _send(
        proxied,
        accepting,
        body,
        body,
        Host="hookrunner.example.com",
        **{"X-Forwarded-For": "203.0.113.7"},
    )
    assert response.status_code == 202, response.text
    delivery_id = response.json()["delivery_id"]
    delivery = requests.get(
        f"{proxied.base_url}/admin/deliveries/{delivery_id}", headers=AUTH, timeout=10
    ).json()
    headers = delivery["headers"]
    assert headers["host"] == "hookrunner.example.com"
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-request-id"] == response.headers["X-Request-ID"]
    assert "connection" not in headers
