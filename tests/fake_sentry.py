"""A local stand-in for Sentry's ingest: records every envelope posted to it.

Used by the tests (:func:`live_sentry`, the envelopes' items) and by
``bench/sentry_overhead.py`` (:meth:`Collector.summary`, counts that prove the
SDK really sent during a run). Runs in a thread of the calling process on
127.0.0.1, keeps connections alive as Sentry's ingest does, and answers every
envelope ``200 {}``.
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
        self.raw: list[bytes] = []
        self.lock = threading.Lock()

    def items(self) -> list[tuple[dict[str, Any], Any]]:
        """(item header, payload) of every envelope item received."""
        with self.lock:
            envelopes = list(self.raw)
        return _items(envelopes)

    def of_type(self, kind: str) -> list[Any]:
        return [payload for header, payload in self.items() if header.get("type") == kind]

    def all_text(self) -> str:
        with self.lock:
            return b"\n".join(self.raw).decode("utf-8", errors="replace")

    def summary(self) -> dict[str, Any]:
        """How many envelopes and bytes arrived, and how many items of each type."""
        with self.lock:
            envelopes = list(self.raw)
        kinds = Counter(str(header.get("type")) for header, _ in _items(envelopes))
        return {
            "envelopes": len(envelopes),
            "bytes": sum(len(envelope) for envelope in envelopes),
            "items": dict(kinds),
        }


def _items(envelopes: list[bytes]) -> list[tuple[dict[str, Any], Any]]:
    found = []
    for envelope in envelopes:
        lines = envelope.split(b"\n")
        index = 1  # line 0 is the envelope header
        while index + 1 < len(lines):
            header = json.loads(lines[index])
            payload = lines[index + 1]
            try:
                found.append((header, json.loads(payload)))
            except ValueError:
                found.append((header, payload))
            index += 2
    return found


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
            with collector.lock:
                collector.raw.append(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
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


@contextmanager
def live_sentry(traces_sample_rate: float = 0.0) -> Iterator[Collector]:
    """Hookrunner's Sentry set-up in this process, sending to a fake ingest.

    Build apps inside the block (the request wrapper is installed only when the
    SDK is active). Leaving the block flushes every event into the collector and
    switches the SDK off again.
    """
    import dataclasses

    from app.config import load_settings
    from app.sentry import close_sentry, init_sentry

    with fake_sentry() as (collector, dsn):
        settings = dataclasses.replace(
            load_settings(env={}), sentry_dsn=dsn, sentry_traces_sample_rate=traces_sample_rate
        )
        assert init_sentry(settings)
        try:
            yield collector
        finally:
            close_sentry()
