"""Drill: kill -9 under load loses no acknowledged webhook and leaves nothing running.

Sends N signed GitHub deliveries (unique delivery ids) from concurrent senders
while the server is SIGKILLed and restarted several times on the same database
and port. Senders behave like real webhook senders: a delivery that got no 2xx
is retried until it does. Afterwards every delivery that was acknowledged must
have exactly one execution, the queue must drain, and no execution may be left
``running``. Exits non-zero on any violation. Targets 127.0.0.1 only; bounded
in count and time.

    python bench/drills/kill9_under_load.py [--deliveries 2000] [--kills 2] [--workers 1]
                                            [--target server|engine] [--command-seconds S]

``--target engine`` SIGKILLs one engine process at a time instead of the whole
server (the supervisor starts a new one; the web workers keep answering), with
each execution running ``sleep S`` so that the kills land on running work: its
executions must end ``interrupted`` - never ``running``, never run twice.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.append(str(Path(__file__).resolve().parents[2]))  # the server helper of tests/
from tests.server import free_port, start_gunicorn, stop

SECRET = "drill-secret"
TOKEN = "drill-admin-token-0123456789abcdef"
DEADLINE_SECONDS = 600


def start_server(db_path: Path, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        "GUNICORN_WORKERS": str(workers),
        "ADMIN_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        "EXECUTION_LEASE_SECONDS": "5",
    }
    return start_gunicorn(db_path, port, log, env)


def signed(delivery: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"delivery": delivery, "ref": "refs/heads/main"}).encode()
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={mac}",
    }


def engine_pids(server: subprocess.Popen[bytes]) -> list[int]:
    """The engine processes of ``server`` (members of its process group)."""
    group = os.getpgid(server.pid)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if b"app.execution.process" in cmdline and os.getpgid(int(entry.name)) == group:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


class Sender:
    def __init__(self, base: str) -> None:
        self.base = base
        self.acked: dict[str, int] = {}
        self.attempts = 0
        self.lock = threading.Lock()

    def deliver(self, delivery: str) -> None:
        body, headers = signed(delivery)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self.lock:
                self.attempts += 1
            try:
                response = requests.post(
                    f"{self.base}/webhooks/drill", data=body, headers=headers, timeout=10
                )
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if 200 <= response.status_code < 300:
                with self.lock:
                    self.acked[delivery] = response.status_code
                return
            time.sleep(0.2)
        raise RuntimeError(f"delivery {delivery} never acknowledged")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--target", choices=("server", "engine"), default="server")
    parser.add_argument("--command-seconds", type=float, default=0.0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hookrunner-drill-"))
    db_path, log = workdir / "drill.db", workdir / "server.log"
    port = free_port()  # the same one for every restart
    base = f"http://127.0.0.1:{port}"
    server = start_server(db_path, port, args.workers, log)
    document = {
        "name": "drill",
        "auth": {"scheme": "github", "secrets": [SECRET]},
        "action": {
            "type": "command",
            "argv": ["/bin/sleep", str(args.command_seconds)]
            if args.command_seconds
            else ["/bin/true"],
        },
        "concurrency": {"max": 4, "on_busy": "queue", "queue_max": 100000},
    }
    created = requests.post(
        f"{base}/admin/triggers",
        json=document,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    created.raise_for_status()

    sender = Sender(base)
    ids = [f"drill-{n:06d}" for n in range(args.deliveries)]
    kills_done = 0

    def killer() -> None:
        nonlocal server, kills_done
        for k in range(args.kills):
            target = (k + 1) * args.deliveries // (args.kills + 1)
            while len(sender.acked) < target:
                time.sleep(0.05)
            if args.target == "engine":
                victims = engine_pids(server)
                if not victims:
                    raise RuntimeError("no engine process to kill")
                os.kill(random.choice(victims), signal.SIGKILL)
            else:
                stop(server, signal.SIGKILL)
            kills_done += 1
            print(
                f"kill -9 #{kills_done} of the {args.target}"
                f" after {len(sender.acked)} acknowledged deliveries"
            )
            time.sleep(0.5)
            if args.target == "server":
                server = start_server(db_path, port, args.workers, log)

    started = time.monotonic()
    chaos = threading.Thread(target=killer, daemon=True)
    chaos.start()
    with ThreadPoolExecutor(args.senders) as pool:
        list(pool.map(sender.deliver, ids))
    chaos.join(timeout=120)

    # Let the queue drain (the restarted server reaps and runs what is left).
    conn = sqlite3.connect(db_path)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        active = conn.execute(
            "SELECT COUNT(*) FROM executions WHERE status IN ('queued', 'running')"
        ).fetchone()[0]
        if active == 0:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    rows = conn.execute(
        "SELECT d.dedup_key, COUNT(e.id), SUM(e.status = 'running')"
        " FROM deliveries d JOIN executions e ON e.delivery_id = d.id"
        " WHERE d.outcome = 'accepted' GROUP BY d.dedup_key"
    ).fetchall()
    statuses = dict(
        conn.execute("SELECT status, COUNT(*) FROM executions GROUP BY status").fetchall()
    )
    stop(server)

    per_key = {key.removeprefix("delivery:"): (count, running) for key, count, running in rows}
    missing = [d for d in sender.acked if d not in per_key]
    doubled = {d: c for d, (c, _) in per_key.items() if c != 1}
    running = sum(r or 0 for _, r in per_key.values())
    print(
        json.dumps(
            {
                "deliveries": args.deliveries,
                "acknowledged": len(sender.acked),
                "send_attempts": sender.attempts,
                "kills": kills_done,
                "executions_by_status": statuses,
                "acknowledged_without_execution": len(missing),
                "deliveries_with_more_than_one_execution": len(doubled),
                "left_running": running,
                "seconds": round(elapsed, 1),
                "workdir": str(workdir),
            },
            indent=2,
        )
    )
    ok = (
        kills_done == args.kills
        and len(sender.acked) == args.deliveries
        and not missing
        and not doubled
        and running == 0
        and not statuses.get("queued")
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
