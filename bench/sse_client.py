"""SSE subscribers for bench/sse_fanout.py: N connections to one execution's stream.

Runs as its own process (pinned to the client CPU by its parent). One thread,
non-blocking sockets and an epoll selector: while streaming it only ``recv``s
and stamps each chunk with ``time.time()``, so the client adds as little as
possible to the latency it measures; HTTP chunked decoding and SSE parsing
happen after the run. Protocol with the parent, on stdout: ``READY <n>`` once
every subscriber has received its first ``status`` event (or ``--timeout``
passed); then it waits for every stream to end (each request says
``Connection: close``), writes ``--out`` (JSON) and exits::

    python bench/sse_client.py --port P --token T --execution ID --subscribers 1000 --out f.json
"""

from __future__ import annotations

import argparse
import json
import resource
import selectors
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import loadgen
import store


@dataclass
class Subscriber:
    sock: socket.socket
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    ready: bool = False  # its first status event arrived
    closed: bool = False


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def connect(host: str, port: int, path: str, token: str) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(request.encode())
    sock.setblocking(False)
    return sock


def pump(subscribers: list[Subscriber], deadline: float, until_ready: bool) -> None:
    """Read whatever arrives; stop when all are ready (or all closed), or at the deadline."""
    selector = selectors.DefaultSelector()
    for index, sub in enumerate(subscribers):
        if not sub.closed:
            selector.register(sub.sock, selectors.EVENT_READ, index)
    waiting = sum(not (sub.ready if until_ready else sub.closed) for sub in subscribers)
    while waiting and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sub = subscribers[key.data]
            try:
                data = sub.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            now = time.time()
            if data:
                sub.chunks.append((now, data))
                if until_ready and not sub.ready:
                    sub.ready = b"event: status" in b"".join(chunk for _, chunk in sub.chunks)
                    waiting -= sub.ready
            else:
                selector.unregister(sub.sock)
                sub.sock.close()
                sub.closed = True
                waiting -= 1 if not until_ready else not sub.ready
    selector.close()


# --- after the run: HTTP, chunked encoding, SSE --------------------------------------------


def events(chunks: list[tuple[float, bytes]]) -> tuple[int, list[tuple[float, dict[str, str]]]]:
    """(HTTP status, [(arrival time, {field: value})]) of one subscriber's byte stream.

    An event's arrival time is that of the chunk which completed it.
    """
    raw, body, status, in_body = b"", b"", 0, False
    found: list[tuple[float, dict[str, str]]] = []
    for arrived, data in chunks:
        raw += data
        if not in_body:
            head, sep, rest = raw.partition(b"\r\n\r\n")
            if not sep:
                continue
            status, in_body, raw = int(head.split(b" ", 2)[1]), True, rest
        while True:  # chunked transfer encoding: <hex size>\r\n<data>\r\n
            size_line, sep, rest = raw.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                break
            body, raw = body + rest[:size], rest[size + 2 :]
        *complete, body = body.split(b"\n\n")
        for block in complete:
            fields: dict[str, str] = {}
            for line in block.decode().split("\n"):
                name, _, value = line.partition(":")
                if name:
                    fields[name] = value.removeprefix(" ")
            if fields:
                found.append((arrived, fields))
    return status, found


def analyse(subscribers: list[Subscriber], expected: int) -> dict[str, Any]:
    """Latency of every log event, events per subscriber, and how long each fan-out took."""
    total, since_stored, printed_to_stored = [], [], []
    per_seq: dict[int, list[float]] = {}
    counts: Counter[int] = Counter()
    statuses: Counter[str] = Counter()
    ended = complete = 0
    for sub in subscribers:
        status, found = events(sub.chunks)
        statuses[str(status)] += 1
        seqs = []
        for arrived, fields in found:
            if fields.get("event") == "end":
                ended += 1
            if fields.get("event") != "log":
                continue
            data = json.loads(fields["data"])
            seqs.append(int(data["seq"]))
            per_seq.setdefault(int(data["seq"]), []).append(arrived)
            stored = store.epoch(data["ts"])
            try:
                printed = float(data["line"])
            except ValueError:
                continue  # a system line, not the command's output
            total.append(arrived - printed)
            since_stored.append(arrived - stored)
            printed_to_stored.append(stored - printed)
        counts[len(seqs)] += 1
        complete += seqs == list(range(1, expected + 1))
    spread = [max(times) - min(times) for times in per_seq.values()]
    return {
        "http_statuses": dict(statuses),
        "log_events_per_subscriber": {str(k): v for k, v in sorted(counts.items())},
        "subscribers_with_every_line_in_order": complete,
        "subscribers_with_end_event": ended,
        "events_received": len(total),
        # printed by the command -> received by a subscriber: the figure of the target
        "latency_ms": loadgen.percentiles_ms(total),
        # parts of it: printed -> stored in the output buffer (pipe, reader greenlet), and
        # stamped -> received (batching until the next flush, the commit, the fan-out)
        "printed_to_stamped_ms": loadgen.percentiles_ms(printed_to_stored),
        "stamped_to_received_ms": loadgen.percentiles_ms(since_stored),
        # for each line: first to last subscriber to receive it
        "fanout_spread_ms": loadgen.percentiles_ms(spread),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1",))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--execution", required=True)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--expected-lines", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=90, help="seconds, whole run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    count = max(1, min(args.subscribers, 10_000))
    deadline = time.monotonic() + min(args.timeout, 600)
    fd_limit = raise_fd_limit(count + 64)
    path = f"/admin/executions/{args.execution}/stream"
    started = time.monotonic()
    subscribers = [
        Subscriber(connect(args.host, args.port, path, args.token)) for _ in range(count)
    ]
    connected_s = time.monotonic() - started
    pump(subscribers, deadline, until_ready=True)
    ready = sum(sub.ready and not sub.closed for sub in subscribers)
    print(f"READY {ready}", flush=True)
    ready_s = time.monotonic() - started
    pump(subscribers, deadline, until_ready=False)
    timed_out = sum(not sub.closed for sub in subscribers)
    for sub in subscribers:
        if not sub.closed:
            sub.sock.close()
    result = {
        "subscribers": count,
        "fd_limit": fd_limit,
        "connect_s": round(connected_s, 3),
        "all_ready_s": round(ready_s, 3),
        "ready": ready,
        "still_open_at_timeout": timed_out,
        "client_cpu_s": round(time.process_time(), 3),
        "wall_s": round(time.monotonic() - started, 3),
    } | analyse(subscribers, args.expected_lines)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
