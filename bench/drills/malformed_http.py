"""Drill: malformed HTTP over raw sockets against a real Gunicorn Hookrunner finds no 5xx.

Starts ``gunicorn -c gunicorn.conf.py`` on a temp database (127.0.0.1 only,
``MAX_BODY_BYTES`` = 64 KiB), creates an unauthenticated and a GitHub-signed
trigger, then sends each case below on its own connection: broken framing
(conflicting or malformed ``Content-Length``, invalid chunk sizes, missing chunk
terminators), huge request lines and headers, bad and deep JSON, duplicate keys,
and bodies over the limit both with ``Content-Length`` and chunked. It fails if
any answer is 5xx (except Gunicorn's 501 for a transfer coding it does not
implement, which RFC 9112 asks for) or if the server logged an unhandled error.
Every socket has a timeout, so the drill always ends.

    python bench/drills/malformed_http.py [--json results.json]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.append(str(Path(__file__).resolve().parents[2]))  # the server helper of tests/
from tests import server as gunicorn_process

TOKEN = "malformed-http-drill-token-0123456789"
SECRET = "drill-secret"
LIMIT = 64 * 1024
SOCKET_TIMEOUT = 5.0


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    half_close: bool = False  # shut our side after sending (bodies shorter than declared)
    allowed_5xx: tuple[int, ...] = ()


def _head(path: str, headers: list[tuple[str, str]], method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunked(body: bytes, size: int = 4096) -> bytes:
    out = b""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def _signed(body: bytes) -> list[tuple[str, str]]:
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return [
        ("Content-Type", "application/json"),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", f"drill-{time.monotonic_ns()}"),
        ("X-Hub-Signature-256", f"sha256={mac}"),
    ]


def _json_case(name: str, path: str, body: bytes, signed: bool = False) -> Case:
    headers = _signed(body) if signed else [("Content-Type", "application/json")]
    if path.startswith("/admin"):
        headers.append(("Authorization", f"Bearer {TOKEN}"))
    return Case(name, _head(path, [*headers, ("Content-Length", str(len(body)))]) + body)


def cases() -> list[Case]:
    ok = b'{"ref": "refs/heads/main"}'
    chunked_json = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    deep = b"[" * 1000 + b"]" * 1000
    very_deep = b"[" * 100_000 + b"]" * 100_000
    big = b'{"pad": "' + b"x" * (LIMIT * 3) + b'"}'
    out = [
        # framing
        *(
            Case(
                f"chunk size {size!r}",
                _head("/webhooks/open", chunked_json) + size + b"\r\n{}\r\n0\r\n\r\n",
            )
            for size in (b"zz", b"-2", b"0x2", b"2;ext=\x01", b"f" * 40, b" 2", b"")
        ),
        Case("chunk without CRLF", _head("/webhooks/open", chunked_json) + b"2\r\n{}XX0\r\n\r\n"),
        Case(
            "chunked, no last chunk", _head("/webhooks/open", chunked_json) + b"2\r\n{}\r\n", True
        ),
        Case(
            "chunked on admin, bad size",
            _head("/admin/triggers", [*chunked_json, ("Authorization", f"Bearer {TOKEN}")])
            + b"zz\r\n",
        ),
        Case(
            "Content-Length and chunked",
            _head("/webhooks/open", [*chunked_json, ("Content-Length", "2")])
            + b"2\r\n{}\r\n0\r\n\r\n",
        ),
        Case(
            "two differing Content-Length",
            _head("/webhooks/open", [("Content-Length", "2"), ("Content-Length", "3")]) + b"{}",
        ),
        Case(
            "Content-Length not a number",
            _head("/webhooks/open", [("Content-Length", "lots")]) + b"{}",
        ),
        Case(
            "negative Content-Length", _head("/webhooks/open", [("Content-Length", "-1")]) + b"{}"
        ),
        Case(
            "Content-Length longer than body",
            _head("/webhooks/open", [("Content-Length", "100")]) + b"{}",
            True,
        ),
        Case(
            "unknown transfer coding",
            _head("/webhooks/open", [("Transfer-Encoding", "gzip, chunked")]) + b"0\r\n\r\n",
            allowed_5xx=(501,),
        ),
        Case("bad request line", b"POST /webhooks/open HTTP/9.9 extra\r\nHost: x\r\n\r\n"),
        Case(
            "lower-case method",
            b"post /webhooks/open HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        ),
        Case(
            "NUL in a header",
            _head("/webhooks/open", [("X-Bad", "a\x00b"), ("Content-Length", "0")]),
        ),
        Case("header without colon", b"POST /webhooks/open HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"),
        Case(
            "obsolete line folding",
            b"POST /webhooks/open HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n"
            b"Content-Length: 0\r\n\r\n",
        ),
        # sizes
        Case(
            "request line 64 KiB",
            f"GET /webhooks/{'a' * 65536} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        ),
        Case(
            "one header of 64 KiB",
            _head("/webhooks/open", [("X-Big", "v" * 65536), ("Content-Length", "0")]),
        ),
        Case(
            "300 headers",
            _head(
                "/webhooks/open", [*((f"X-H{i}", "v") for i in range(300)), ("Content-Length", "0")]
            ),
        ),
        Case(
            "body over the limit, Content-Length",
            _head(
                "/webhooks/open",
                [("Content-Type", "application/json"), ("Content-Length", str(len(big)))],
            )
            + big,
        ),
        Case("body over the limit, chunked", _head("/webhooks/open", chunked_json) + _chunked(big)),
        Case(
            "signed body over the limit, chunked",
            _head("/webhooks/signed", [*_signed(big)[:-1], ("Transfer-Encoding", "chunked")])
            + _chunked(big),
        ),
        Case(
            "admin body over the limit, chunked",
            _head("/admin/triggers", [*chunked_json, ("Authorization", f"Bearer {TOKEN}")])
            + _chunked(big),
        ),
        # JSON
        _json_case("truncated JSON", "/webhooks/open", b'{"ref": '),
        _json_case("invalid UTF-8 JSON", "/webhooks/open", b'{"ref": "\xff\xfe"}'),
        _json_case("JSON 1,000 deep", "/webhooks/open", deep),
        _json_case("JSON 100,000 deep", "/webhooks/open", very_deep),
        _json_case("signed JSON 1,000 deep", "/webhooks/signed", deep, signed=True),
        _json_case("duplicate keys", "/webhooks/open", b'{"a": 1, "a": 2}'),
        _json_case(
            "NaN and huge numbers",
            "/webhooks/open",
            b'{"a": NaN, "b": 1e999999, "c": ' + b"9" * 5000 + b"}",
        ),
        _json_case(
            "admin JSON 1,000 deep", "/admin/triggers", b'{"a":' * 1000 + b"1" + b"}" * 1000
        ),
        _json_case("admin truncated JSON", "/admin/triggers", b'{"name": '),
        _json_case(
            "dry run JSON 1,000 deep", "/admin/triggers/signed/test", b'{"body":' + deep + b"}"
        ),
        _json_case("signed, wrong signature", "/webhooks/signed", ok),
        Case(
            "deep cursor",
            (
                f"GET /admin/deliveries?cursor={'W' * 2000} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {TOKEN}\r\n\r\n"
            ).encode(),
        ),
    ]
    return out


def send(port: int, case: Case) -> int | None:
    """The status of the first response, or None when the server closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        try:
            sock.sendall(case.data)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before reading everything
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    if not data.startswith(b"HTTP/"):
        return None
    return int(data.split(b" ", 2)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here as well")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hookrunner-malformed-"))
    port = 19500 + os.getpid() % 400
    log = workdir / "server.log"
    env = {"ADMIN_TOKEN": TOKEN, "ENGINE_ENABLED": "0", "MAX_BODY_BYTES": str(LIMIT)}
    server = gunicorn_process.start_gunicorn(workdir / "drill.db", port, log, env)
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for name, scheme in (
            ("open", {"scheme": "none"}),
            ("signed", {"scheme": "github", "secrets": [SECRET]}),
        ):
            document = {
                "name": name,
                "auth": scheme,
                "action": {"type": "command", "argv": ["/bin/true"]},
            }
            created = requests.post(
                f"http://127.0.0.1:{port}/admin/triggers", json=document, headers=auth, timeout=10
            )
            created.raise_for_status()
        for case in cases():
            status = send(port, case)
            statuses[str(status)] += 1
            verdict = "ok"
            if status is not None and status >= 500 and status not in case.allowed_5xx:
                verdict = "FAIL"
                failures.append(f"{case.name}: {status}")
            print(f"{verdict:4} {status!s:>4}  {case.name}")
        requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).raise_for_status()
    finally:
        gunicorn_process.stop(server)
    logged = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if ('"status": 5' in line and '"status": 501' not in line)
        or "unhandled error" in line
        or "Error handling request" in line
    ]
    failures += [f"server log: {line[:200]}" for line in logged]
    total = sum(statuses.values())
    fivexx = sum(n for s, n in statuses.items() if s != "None" and int(s) >= 500)
    figures = {"cases": total, "statuses": dict(statuses), "5xx": fivexx, "failures": failures}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
