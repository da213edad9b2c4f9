"""Cross-host SSE: line -> subscriber latency when the execution runs on the other instance.

Two Gunicorn instances ("hosts") share one fresh PostgreSQL database: A only
ingests and serves streams (``ENGINE_ENABLED=0``), B also runs executions. An
execution on B prints a line with its own ``time.time()`` every 50 ms; one
subscriber follows it from A (cross-host, woken by LISTEN/NOTIFY) and, in the
same run, another from B (same host, the baseline). Latency = received - printed,
both clocks on this machine. Target (docs/architecture.md, "Targets"): cross-host
p99 < 250 ms::

    python bench/sse_cross_host.py [--lines 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import harness
import requests
import store

sys.path.append(str(Path(__file__).resolve().parent / "drills"))
from two_hosts import AUTH, start_host

from tests.server import free_port, stop


def follow(base: str, url: str, latencies: list[float], ready: threading.Event) -> None:
    """Follow one stream, appending each tick's latency; ``ready`` once it is open."""
    with requests.get(f"{base}{url}", headers=AUTH, stream=True, timeout=120) as stream:
        ready.set()
        event = ""
        for raw in stream.iter_lines(decode_unicode=True):
            now = time.time()
            if raw.startswith("event: "):
                event = raw.removeprefix("event: ")
            elif raw.startswith("data: ") and event == "log":
                line = json.loads(raw.removeprefix("data: "))["line"]
                if line.startswith("t="):
                    latencies.append((now - float(line[2:])) * 1000)
            elif event == "end":
                return


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not 10 <= args.lines <= 2000 or not 1 <= args.runs <= 10:
        raise SystemExit("--lines must be 10..2000 and --runs 1..10")
    name = f"hr_bench_{uuid.uuid4().hex[:10]}"
    url = store.create_postgres(name)
    workdir = Path(tempfile.mkdtemp(prefix="hookrunner-sse-cross-"))
    port_a, port_b = free_port(), free_port()
    host_a, host_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    servers = [
        start_host(url, port_a, workdir / "a.log", engine=False),
        start_host(url, port_b, workdir / "b.log", engine=True),
    ]
    script = (
        "import time, sys\n"
        "time.sleep(0.5)\n"
        f"for _ in range({args.lines}):\n"
        "    print(f't={time.time()}', flush=True); time.sleep(0.05)\n"
    )
    cross: list[float] = []
    local: list[float] = []
    try:
        document = {
            "name": "ticks",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "action": {"type": "command", "argv": [sys.executable, "-c", script]},
        }
        requests.post(f"{host_a}/admin/triggers", json=document, headers=AUTH, timeout=10)
        for _ in range(args.runs):
            accepted = requests.post(f"{host_a}/webhooks/ticks", json={}, timeout=10).json()
            ready_a, ready_b = threading.Event(), threading.Event()
            followers = [
                threading.Thread(
                    target=follow, args=(host_a, accepted["stream_url"], cross, ready_a)
                ),
                threading.Thread(
                    target=follow, args=(host_b, accepted["stream_url"], local, ready_b)
                ),
            ]
            for thread in followers:
                thread.start()
            # The command waits 0.5 s before its first line, so both streams are open
            # before it: every tick is delivered live, none replayed from the store.
            if not (ready_a.wait(10) and ready_b.wait(10)):
                raise SystemExit("a stream did not open within 10 s")
            for thread in followers:
                thread.join(300)
    finally:
        for server in servers:
            stop(server)
        store.drop_postgres(name)
    result = {
        "lines_per_run": args.lines,
        "runs": args.runs,
        "cross_host": {
            "count": len(cross),
            "p50_ms": round(statistics.median(cross), 1),
            "p99_ms": round(percentile(cross, 0.99), 1),
        },
        "same_host": {
            "count": len(local),
            "p50_ms": round(statistics.median(local), 1),
            "p99_ms": round(percentile(local, 0.99), 1),
        },
    }
    result["cross_over_same_p99"] = round(
        result["cross_host"]["p99_ms"] / max(result["same_host"]["p99_ms"], 0.001), 2
    )
    print(json.dumps(result, indent=2))
    out = harness.PROJECT_ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (out / f"sse-cross-host-{stamp}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
