"""Drill: two "hosts" on one PostgreSQL database, one of them killed -9 twice under load.

Host A and host B are two Gunicorn instances on different ports with two
workers each, sharing one fresh PostgreSQL database. A ingests only
(``ENGINE_ENABLED=0``), B ingests and runs executions. N signed deliveries go to
a random host each, and 10 % of them are sent again to the *other* host (a
sender retry that lands elsewhere); senders retry until they get a 2xx, as real
senders do. Host B's whole process group is SIGKILLed twice and restarted.

Afterwards: every acknowledged delivery has exactly one execution, none is left
queued or running, and a live stream opened on host A for an execution running
on host B received every line in order. Exits non-zero on any violation.
Targets 127.0.0.1 only; bounded in count and time::

    python bench/drills/two_hosts.py [--deliveries 2000] [--kills 2]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.append(str(Path(__file__).resolve().parents[2]))  # the project, for tests/ and app/
from kill9_under_load import SECRET, TOKEN, signed

from app.store.postgres.database import PostgresDatabase
from tests.server import free_port, start_gunicorn, stop

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEADLINE_SECONDS = 600
LINES = 30


def start_host(url: str, port: int, log: Path, engine: bool) -> subprocess.Popen[bytes]:
    env = {
        "DATABASE_URL": url,
        "GUNICORN_WORKERS": "2",
        "ADMIN_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        "EXECUTION_LEASE_SECONDS": "5",
        "ENGINE_ENABLED": "1" if engine else "0",
    }
    return start_gunicorn(log.with_suffix(".unused.db"), port, log, env)


class Senders:
    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts
        self.acked: dict[str, list[int]] = {}
        self.lock = threading.Lock()

    def _until_acked(self, base: str, delivery: str) -> int:
        body, headers = signed(delivery)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                answer = requests.post(
                    f"{base}/webhooks/drill", data=body, headers=headers, timeout=10
                )
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if 200 <= answer.status_code < 300:
                return answer.status_code
            time.sleep(0.2)
        raise RuntimeError(f"delivery {delivery} never acknowledged by {base}")

    def deliver(self, number: int) -> None:
        delivery = f"two-hosts-{number:06d}"
        first = random.randrange(2)
        codes = [self._until_acked(self.hosts[first], delivery)]
        if number % 10 == 0:  # the same delivery again, at the other host
            codes.append(self._until_acked(self.hosts[1 - first], delivery))
        with self.lock:
            self.acked[delivery] = codes


def stream_lines(host_a: str, host_b: str) -> tuple[list[str], str]:
    """Start an execution (it runs on B, the only engine host); follow it from A."""
    script = f"for i in $(seq 1 {LINES}); do echo line$i; sleep 0.05; done"
    document = {
        "name": "lines",
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": {"type": "command", "argv": ["/bin/sh", "-c", script]},
    }
    requests.post(f"{host_a}/admin/triggers", json=document, headers=AUTH, timeout=10)
    accepted = requests.post(f"{host_b}/webhooks/lines", json={}, timeout=10).json()
    lines, status = [], ""
    with requests.get(
        f"{host_a}{accepted['stream_url']}", headers=AUTH, stream=True, timeout=60
    ) as stream:
        event = ""
        for raw in stream.iter_lines(decode_unicode=True):
            if raw.startswith("event: "):
                event = raw.removeprefix("event: ")
            elif raw.startswith("data: ") and event == "log":
                lines.append(json.loads(raw.removeprefix("data: "))["line"])
            elif raw.startswith("data: ") and event == "end":
                status = json.loads(raw.removeprefix("data: "))["status"]
                break
    return lines, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--senders", type=int, default=16)
    args = parser.parse_args()
    if not 1 <= args.deliveries <= 20000 or not 0 <= args.kills <= 5:
        raise SystemExit("--deliveries must be 1..20000 and --kills 0..5")

    import psycopg

    name = f"hr_drill_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN.rpartition('/')[0]}/{name}"
    workdir = Path(tempfile.mkdtemp(prefix="hookrunner-two-hosts-"))
    port_a, port_b = free_port(), free_port()
    host_a, host_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    server_a = start_host(url, port_a, workdir / "a.log", engine=False)
    server_b = start_host(url, port_b, workdir / "b.log", engine=True)
    store = PostgresDatabase(url, pool_size=2)
    try:
        document = {
            "name": "drill",
            "auth": {"scheme": "github", "secrets": [SECRET]},
            "action": {"type": "command", "argv": ["/bin/true"]},
            "concurrency": {"max": 4, "on_busy": "queue", "queue_max": 100000},
        }
        requests.post(f"{host_a}/admin/triggers", json=document, headers=AUTH, timeout=10)
        senders = Senders([host_a, host_b])
        kills_done = 0

        def killer() -> None:
            nonlocal server_b, kills_done
            for k in range(args.kills):
                target = (k + 1) * args.deliveries // (args.kills + 1)
                while len(senders.acked) < target:
                    time.sleep(0.05)
                stop(server_b, signal.SIGKILL)
                kills_done += 1
                print(f"kill -9 of host B #{kills_done} after {len(senders.acked)} deliveries")
                time.sleep(0.5)
                server_b = start_host(url, port_b, workdir / "b.log", engine=True)

        started = time.monotonic()
        chaos = threading.Thread(target=killer, daemon=True)
        chaos.start()
        with ThreadPoolExecutor(args.senders) as pool:
            list(pool.map(senders.deliver, range(args.deliveries)))
        chaos.join(timeout=180)

        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            with store.read() as conn:
                active = conn.execute(
                    "SELECT COUNT(*) FROM executions WHERE status IN ('queued', 'running')"
                ).fetchone()[0]
            if active == 0:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        with store.read() as conn:
            per_key = {
                str(row[0]).removeprefix("delivery:"): int(row[1])
                for row in conn.execute(
                    "SELECT d.dedup_key, COUNT(DISTINCT e.id) FROM deliveries d"
                    " JOIN executions e ON e.delivery_id = d.id"
                    " WHERE d.outcome = 'accepted' AND d.trigger = 'drill' GROUP BY d.dedup_key"
                ).fetchall()
            }
            statuses = {
                str(row[0]): int(row[1])
                for row in conn.execute(
                    "SELECT status, COUNT(*) FROM executions GROUP BY status"
                ).fetchall()
            }
        lines, final = stream_lines(host_a, host_b)
    finally:
        store.close()
        stop(server_a)
        stop(server_b)
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    missing = [d for d in senders.acked if d not in per_key]
    doubled = {d: c for d, c in per_key.items() if c != 1}
    expected_lines = [f"line{i}" for i in range(1, LINES + 1)]
    report = {
        "deliveries": args.deliveries,
        "acknowledged": len(senders.acked),
        "sent_to_both_hosts": sum(1 for codes in senders.acked.values() if len(codes) == 2),
        "kills_of_host_b": kills_done,
        "executions_by_status": statuses,
        "acknowledged_without_execution": len(missing),
        "deliveries_with_more_than_one_execution": len(doubled),
        "stream_on_a_lines_in_order": lines == expected_lines,
        "stream_on_a_end_status": final,
        "seconds": round(elapsed, 1),
        "workdir": str(workdir),
    }
    print(json.dumps(report, indent=2))
    ok = (
        kills_done == args.kills
        and len(senders.acked) == args.deliveries
        and not missing
        and not doubled
        and not statuses.get("queued")
        and not statuses.get("running")
        and lines == expected_lines
        and final == "succeeded"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
