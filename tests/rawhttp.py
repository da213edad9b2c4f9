"""Raw-socket HTTP/1.1 for tests that need framing no client library will send."""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names; the first of repeated ones
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _read_until_closed_or_complete(sock: socket.socket) -> bytes:
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and len(rest) >= int(value):
                    return data
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return data
        if not chunk:
            return data
        data += chunk


def send_raw(
    base_url: str, request: bytes, timeout: float = 10.0, *, half_close: bool = False
) -> RawResponse | None:
    """Send ``request`` as is (then end our side when ``half_close``); the first response,
    or None if the server sent none."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        # The server may answer and close before reading everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        data = _read_until_closed_or_complete(sock)
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    length = headers.get("content-length")
    return RawResponse(int(lines[0].split()[1]), headers, body[: int(length)] if length else body)


def chunked(body: bytes, size: int = 256) -> bytes:
    """``body`` in chunked transfer coding, ``size`` bytes a chunk, with the last chunk."""
    out = b""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def post_head(path: str, headers: dict[str, str]) -> bytes:
    """A POST request line and headers (no body), Host included."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
