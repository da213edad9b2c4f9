"""Drill: a command flooding short lines does not starve the worker.

Starts a real Hookrunner (one gevent worker), runs one execution of
``sh -c 'yes | head -c 50000000'`` (50 MB of two-byte lines, default
``max_output_bytes`` of 1 MiB), and while it runs polls ``/healthz`` back to
back from one keep-alive connection, recording every latency. Passes when the
execution finishes with its output truncated and the slowest ``/healthz``
answer took less than ``--max-ms`` (100 ms). Targets 127.0.0.1 only; bounded
in time (``--deadline``); exits non-zero on failure.

    python bench/drills/output_flood.py [--bytes 50000000] [--max-ms 100]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.append(str(Path(__file__).resolve().parents[2]))  # the server helper of tests/
from tests import server as gunicorn_process

TOKEN = "drill-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = {"succeeded", "failed", "timed_out", "cancelled", "interrupted"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll_health(base: str, stop: threading.Event, latencies: list[float]) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            started = time.perf_counter()
            response = session.get(f"{base}/healthz", timeout=30)
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()


def run(flood_bytes: int, max_ms: float, deadline_seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="hookrunner-flood-") as folder:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"GUNICORN_WORKERS": "1", "ADMIN_TOKEN": TOKEN, "LOG_LEVEL": "WARNING"}
        server = gunicorn_process.start_gunicorn(
            Path(folder) / "flood.db", port, Path(folder) / "server.log", env
        )
        try:
            trigger = {
                "name": "flood",
                "auth": {"scheme": "none"},
                "dedup": {"key": "none"},
                "action": {
                    "type": "command",
                    "argv": ["/bin/sh", "-c", f"yes 2>/dev/null | head -c {flood_bytes}"],
                },
            }
            created = requests.post(
                f"{base}/admin/triggers", json=trigger, headers=AUTH, timeout=10
            )
            created.raise_for_status()
            stop, latencies = threading.Event(), []
            poller = threading.Thread(target=poll_health, args=(base, stop, latencies))
            poller.start()
            time.sleep(0.5)  # a baseline before the flood starts
            started = time.monotonic()
            accepted = requests.post(f"{base}/webhooks/flood", json={}, timeout=10).json()
            url = f"{base}/admin/executions/{accepted['execution_id']}"
            execution: dict[str, object] = {}
            while time.monotonic() - started < deadline_seconds:
                execution = requests.get(url, headers=AUTH, timeout=30).json()
                if execution["status"] in FINAL:
                    break
                time.sleep(0.25)
            elapsed = time.monotonic() - started
            stop.set()
            poller.join()
        finally:
            gunicorn_process.stop(server)
    report = execution.get("report") or {}
    assert isinstance(report, dict)
    ordered = sorted(latencies)
    result = {
        "flood_bytes": flood_bytes,
        "status": execution.get("status"),
        "output_bytes": execution.get("output_bytes"),
        "output_truncated": report.get("output_truncated"),
        "execution_seconds": round(elapsed, 2),
        "healthz_requests": len(ordered),
        "healthz_p50_ms": round(statistics.median(ordered), 2),
        "healthz_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2),
        "healthz_max_ms": round(ordered[-1], 2),
        "max_ms_allowed": max_ms,
    }
    result["pass"] = (
        result["status"] == "succeeded"
        and result["output_truncated"] is True
        and ordered[-1] < max_ms
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=50_000_000)
    parser.add_argument("--max-ms", type=float, default=100.0)
    parser.add_argument("--deadline", type=float, default=300.0)
    args = parser.parse_args()
    result = run(args.bytes, args.max_ms, args.deadline)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
