"""A local stand-in for Sentry's ingest (after tests/fake_sentry.py): counts what it gets.

Runs in a thread of the bench process on 127.0.0.1 and answers every envelope
``200 {}``. :meth:`Collector.summary` says how many envelopes and items of each
type arrived, which proves the SDK was really on during a run.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Collector:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.envelopes = 0
        self.bytes = 0
        self.items: Counter[str] = Counter()

    def record(self, envelope: bytes) -> None:
        lines = envelope.rstrip(b"\n").split(b"\n")
        kinds = []
        for line in lines[1::2]:  # line 0 is the envelope header, then header/payload pairs
            try:
                kinds.append(str(json.loads(line).get("type")))
            except (ValueError, AttributeError):
                kinds.append("unparsed")
        with self.lock:
            self.envelopes += 1
            self.bytes += len(envelope)
            self.items.update(kinds)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {"envelopes": self.envelopes, "bytes": self.bytes, "items": dict(self.items)}


@contextmanager
def fake_sentry() -> Iterator[tuple[Collector, str]]:
    """Yield the collector and a DSN pointing at it."""
    collector = Collector()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Sentry's ingest does

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            collector.record(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            return  # a worker that exits resets its kept-alive connection: not news

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector, f"http://publickey@127.0.0.1:{server.server_address[1]}/42"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
