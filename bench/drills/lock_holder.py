"""Drill: another process holding the SQLite write lock does not freeze the worker.

Starts a real Hookrunner (one gevent worker), then a separate process takes
``BEGIN IMMEDIATE`` on its database and holds it for ``--hold`` seconds (10).
Meanwhile ``/healthz`` is polled back to back and webhooks are sent one after
another. Passes when the slowest ``/healthz`` answer took less than
``--max-ms`` (100 ms) and every webhook got either 202 or 503 with
``Retry-After`` (none hung, none failed otherwise). Targets 127.0.0.1 only;
bounded in time; exits non-zero on failure.

    python bench/drills/lock_holder.py [--hold 10] [--max-ms 100]
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

sys.path.append(str(Path(__file__).resolve().parents[2]))  # the server helper of tests/
from tests import server as gunicorn_process

TOKEN = "drill-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hold_lock(db_path: Path, seconds: float, held: threading.Event) -> None:
    """Hold the write lock from this (separate) process's own connection."""
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


def poll_health(base: str, stop: threading.Event, latencies: list[float]) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            started = time.perf_counter()
            session.get(f"{base}/healthz", timeout=30).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)


def send_webhooks(base: str, stop: threading.Event, outcomes: list[tuple[str, float]]) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            started = time.perf_counter()
            response = session.post(f"{base}/webhooks/locked", json={}, timeout=60)
            elapsed = time.perf_counter() - started
            if response.status_code == 503 and response.headers.get("Retry-After"):
                outcomes.append(("503 Retry-After", elapsed))
            else:
                outcomes.append((str(response.status_code), elapsed))


def run(hold_seconds: float, max_ms: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="hookrunner-lock-") as folder:
        port, db_path = free_port(), Path(folder) / "lock.db"
        base = f"http://127.0.0.1:{port}"
        env = {"GUNICORN_WORKERS": "1", "ADMIN_TOKEN": TOKEN, "LOG_LEVEL": "WARNING"}
        server = gunicorn_process.start_gunicorn(db_path, port, Path(folder) / "server.log", env)
        try:
            trigger = {
                "name": "locked",
                "auth": {"scheme": "none"},
                "dedup": {"key": "none"},
                "action": {"type": "command", "argv": ["/bin/true"]},
                "concurrency": {"max": 1000, "queue_max": 100000},
            }
            created = requests.post(
                f"{base}/admin/triggers", json=trigger, headers=AUTH, timeout=10
            )
            created.raise_for_status()
            held = threading.Event()
            holder = threading.Thread(target=hold_lock, args=(db_path, hold_seconds, held))
            holder.start()
            held.wait(10)
            stop = threading.Event()
            latencies: list[float] = []
            outcomes: list[tuple[str, float]] = []
            workers = [
                threading.Thread(target=poll_health, args=(base, stop, latencies)),
                threading.Thread(target=send_webhooks, args=(base, stop, outcomes)),
            ]
            for worker in workers:
                worker.start()
            holder.join()
            time.sleep(1)  # and a moment after the lock is released
            stop.set()
            for worker in workers:
                worker.join()
        finally:
            gunicorn_process.stop(server)
    ordered = sorted(latencies)
    kinds = Counter(kind for kind, _ in outcomes)
    result: dict[str, object] = {
        "hold_seconds": hold_seconds,
        "healthz_requests": len(ordered),
        "healthz_p50_ms": round(statistics.median(ordered), 2),
        "healthz_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2),
        "healthz_max_ms": round(ordered[-1], 2),
        "webhooks": dict(kinds),
        "webhook_slowest_s": round(max(elapsed for _, elapsed in outcomes), 2),
        "max_ms_allowed": max_ms,
    }
    result["pass"] = ordered[-1] < max_ms and set(kinds) <= {"202", "503 Retry-After"}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument("--max-ms", type=float, default=100.0)
    args = parser.parse_args()
    result = run(args.hold, args.max_ms)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
