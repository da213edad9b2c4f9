"""Body size and framing through a real Gunicorn, over raw sockets."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.rawhttp import chunked, post_head, send_raw
from tests.server import Server, gunicorn_server

pytestmark = pytest.mark.slow

LIMIT = 1024
TOKEN = "framing-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHUNKED = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path: Path = tmp_path_factory.mktemp("framing")
    env = {
        "MAX_BODY_BYTES": str(LIMIT),
        "ADMIN_TOKEN": TOKEN,
        "ENGINE_ENABLED": "0",
        "BODY_IDLE_SECONDS": "1",
    }
    with gunicorn_server(tmp_path, env=env) as running:
        document = {
            "name": "open",
            "auth": {"scheme": "none"},
            "action": {"type": "command", "argv": ["/bin/true"]},
            "dedup": {"key": "none"},
        }
        created = requests.post(
            f"{running.base_url}/admin/triggers", json=document, headers=AUTH, timeout=10
        )
        assert created.status_code == 201, created.text
        yield running


def _deliveries(server: Server) -> int:
    listed = requests.get(f"{server.base_url}/admin/deliveries", headers=AUTH, timeout=10)
    return len(listed.json()["items"])


def _json_body(size: int) -> bytes:
    filler = "x" * (size - len(b'{"pad":""}'))
    body = json.dumps({"pad": filler}, separators=(",", ":")).encode()
    assert len(body) == size
    return body


def test_chunked_body_over_the_limit_is_413_and_not_stored(server: Server) -> None:
    before = _deliveries(server)
    body = _json_body(LIMIT * 4)
    response = send_raw(server.base_url, post_head("/webhooks/open", CHUNKED) + chunked(body))
    assert response is not None
    assert response.status == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["request_id"] == response.headers["x-request-id"]
    assert _deliveries(server) == before


def test_chunked_body_over_the_limit_is_413_before_the_signature_check(server: Server) -> None:
    # A trigger that does not exist would be 404 and a signed one 401: size comes first.
    body = _json_body(LIMIT + 1)
    response = send_raw(server.base_url, post_head("/webhooks/nosuch", CHUNKED) + chunked(body))
    assert response is not None
    assert response.status == 413


def test_chunked_admin_body_over_the_limit_is_413(server: Server) -> None:
    body = _json_body(LIMIT * 2)
    request = post_head("/admin/triggers", {**CHUNKED, **AUTH}) + chunked(body)
    response = send_raw(server.base_url, request)
    assert response is not None
    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_chunked_admin_body_at_the_limit_is_read_whole(server: Server) -> None:
    body = _json_body(LIMIT)
    request = post_head("/admin/triggers", {**CHUNKED, **AUTH}) + chunked(body)
    response = send_raw(server.base_url, request)
    assert response is not None
    assert response.status == 422  # parsed whole: a valid JSON object, not a trigger


@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT])
def test_chunked_body_within_the_limit_is_accepted_whole(server: Server, size: int) -> None:
    body = _json_body(size)
    response = send_raw(server.base_url, post_head("/webhooks/open", CHUNKED) + chunked(body))
    assert response is not None
    assert response.status == 202, response.body
    delivery_id = response.json()["delivery_id"]
    stored = requests.get(
        f"{server.base_url}/admin/deliveries/{delivery_id}", headers=AUTH, timeout=10
    ).json()
    assert stored["body"] == body.decode()


def test_declared_length_over_the_limit_is_413(server: Server) -> None:
    body = _json_body(LIMIT + 1)
    headers = {"Content-Length": str(len(body)), "Content-Type": "application/json"}
    response = send_raw(server.base_url, post_head("/webhooks/open", headers) + body)
    assert response is not None
    assert response.status == 413


def test_body_shorter_than_its_content_length_is_400_and_not_stored(server: Server) -> None:
    before = _deliveries(server)
    headers = {"Content-Length": "100", "Content-Type": "application/json"}
    request = post_head("/webhooks/open", headers) + b'{"cut": 1}'
    response = send_raw(server.base_url, request, half_close=True)
    assert response is not None
    assert response.status == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert _deliveries(server) == before


@pytest.mark.parametrize(
    "framing",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not hexadecimal
        b"-2\r\n{}\r\n0\r\n\r\n",  # negative
        b"2\r\n{}XX0\r\n\r\n",  # chunk without its CRLF terminator
    ],
)
@pytest.mark.parametrize("path", ["/webhooks/open", "/admin/triggers"])
def test_malformed_chunk_framing_is_400_not_500(server: Server, framing: bytes, path: str) -> None:
    response = send_raw(server.base_url, post_head(path, {**CHUNKED, **AUTH}) + framing)
    assert response is not None
    assert response.status == 400, response.body
    assert response.json()["error"]["code"] == "malformed_request"
    assert not any('"status": 500' in line for line in server.log_lines())


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/admin/triggers"), ("PATCH", "/admin/triggers/open")]
)
def test_admin_body_shorter_than_its_content_length_is_400_and_changes_nothing(
    server: Server, method: str, path: str
) -> None:
    body = json.dumps({"name": "cut", "description": "truncated-write"}).encode()
    if method == "PATCH":
        body = json.dumps({"description": "truncated-write"}).encode()
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": str(len(body) + 50)}
    head = post_head(path, headers).replace(b"POST ", f"{method} ".encode(), 1)
    response = send_raw(server.base_url, head + body, half_close=True)
    assert response is not None
    assert response.status == 400, response.body
    assert response.json()["error"]["code"] == "bad_request"
    listed = requests.get(f"{server.base_url}/admin/triggers", headers=AUTH, timeout=10).json()
    assert [(t["name"], t["description"]) for t in listed["items"]] == [("open", "")]


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Encoding": "gzip", "Content-Type": "application/json"},
        {"Content-Encoding": "br", "Content-Type": "text/plain"},
        {"Transfer-Encoding": "gzip, chunked", "Content-Type": "application/json"},
    ],
)
@pytest.mark.parametrize("path", ["/webhooks/open", "/admin/triggers"])
def test_an_encoded_body_is_415_and_not_stored(
    server: Server, headers: dict[str, str], path: str
) -> None:
    import gzip

    before = _deliveries(server)
    body = gzip.compress(b'{"a": 1}')
    if "Transfer-Encoding" in headers:
        request = post_head(path, {**headers, **AUTH}) + chunked(body)
    else:
        request = post_head(path, {**headers, **AUTH, "Content-Length": str(len(body))}) + body
    response = send_raw(server.base_url, request)
    assert response is not None
    assert response.status == 415, response.body
    assert response.json()["error"]["code"] == "unsupported_encoding"
    assert _deliveries(server) == before


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (  # two Content-Length headers
            b"POST /webhooks/open HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Content-Length: 3\r\n\r\n{}",
            400,
            "malformed_request",
        ),
        (  # Content-Length beside Transfer-Encoding: a smuggling attempt
            b"POST /webhooks/open HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            400,
            "malformed_request",
        ),
        (  # a header value with a NUL
            b"POST /webhooks/open HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n"
            b"Content-Length: 2\r\n\r\n{}",
            400,
            "malformed_request",
        ),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request_line_too_long"),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: y\r\n" % n for n in range(150))
            + b"\r\n",
            431,
            "headers_too_large",
        ),
        (
            b"POST /webhooks/open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            501,
            "unsupported_transfer_coding",
        ),
    ],
)
def test_requests_gunicorn_refuses_get_the_json_envelope(
    server: Server, request_bytes: bytes, status: int, code: str
) -> None:
    response = send_raw(server.base_url, request_bytes)
    assert response is not None
    assert response.status == status, response.body
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"]
    assert response.headers["x-request-id"] == error["request_id"]


@pytest.mark.parametrize(
    "framing",
    [
        ({"Content-Length": "100", "Content-Type": "application/json"}, b'{"stalled": '),
        (CHUNKED, b"100000\r\n" + b"x" * 10),  # a declared chunk that never comes
    ],
)
@pytest.mark.parametrize("path", ["/webhooks/open", "/admin/triggers"])
def test_a_body_that_stops_arriving_is_400_while_the_client_waits(
    server: Server, framing: tuple[dict[str, str], bytes], path: str
) -> None:
    headers, partial = framing
    before = _deliveries(server)
    # No half-close: the client keeps the connection open and sends nothing more.
    response = send_raw(server.base_url, post_head(path, {**headers, **AUTH}) + partial)
    assert response is not None, "no answer: the stalled body held the connection"
    assert response.status == 400, response.body
    assert response.json()["error"]["code"] in ("bad_request", "malformed_request")
    assert _deliveries(server) == before


def test_headers_that_trickle_in_lose_the_connection_at_the_keepalive_bound(
    server: Server,
) -> None:
    """A client sending its headers a byte at a time (slowloris) is cut off.

    Gunicorn's gevent worker waits for a request's headers no longer than
    ``keepalive`` (5 s in gunicorn.conf.py), however steadily the bytes come;
    the client is sent nothing and its connection is closed.
    """
    parts = urlsplit(server.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/open HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        answer: bytes | None = None
        for _ in range(120):  # a byte every half second, for a minute at most
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                answer = b""
                break
            if select.select([sock], [], [], 0.5)[0]:
                try:
                    answer = sock.recv(4096)
                except ConnectionResetError:
                    answer = b""
                break
    assert answer == b"", f"the trickling client was not cut off: {answer!r}"
