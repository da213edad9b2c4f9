"""Drill: the disk under the SQLite database fills up while an execution runs, then frees.

A small tmpfs holds the database of a real Gunicorn Hookrunner (engine on). An
execution is started and held; the tmpfs is then filled to the last byte, the
execution is let go (it prints lines and succeeds while no write can land), and
webhooks keep arriving. While the disk is full: no 5xx other than 503 with
``Retry-After``, and ``/healthz`` answers. After the filler is removed: the held
execution is recorded ``succeeded`` exactly once with every line of its output,
nothing stays ``running``, and new webhooks are accepted again. Exits non-zero
on any violation; skipped (exit 0, with the reason) where mounting a tmpfs is
not permitted. Targets 127.0.0.1 only; bounded in time::

    python bench/drills/disk_full.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.append(str(Path(__file__).resolve().parents[2]))  # the server helper of tests/
from tests.server import free_port, start_gunicorn, stop

TOKEN = "disk-full-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LINES = 20


def fill(path: Path) -> None:
    """Write zeros until the file system says no more."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):  # big writes first, then the last few bytes
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(descriptor)


def wait(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="hookrunner-disk-full-"))
    mount = workdir / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        print(f"SKIP: cannot mount a tmpfs here ({mounted.stderr.strip() or 'not permitted'})")
        return 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gate, done = workdir / "gate", workdir / "done"
    problems: list[str] = []
    server = None
    try:
        env = {"ADMIN_TOKEN": TOKEN, "LOG_LEVEL": "WARNING", "SQLITE_BUSY_TIMEOUT_MS": "200"}
        server = start_gunicorn(mount / "hookrunner.db", port, workdir / "server.log", env)
        script = (
            f"while [ ! -e {gate} ]; do sleep 0.05; done;"
            f" for i in $(seq 1 {LINES}); do echo line$i; done; touch {done}"
        )
        document = {
            "name": "held",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "retry": {"max_attempts": 3, "backoff_seconds": 1},
            "action": {"type": "command", "argv": ["/bin/sh", "-c", script]},
        }
        requests.post(f"{base}/admin/triggers", json=document, headers=AUTH, timeout=10)
        held = requests.post(f"{base}/webhooks/held", json={}, timeout=10).json()["execution_id"]

        def status() -> str:
            answer = requests.get(f"{base}/admin/executions/{held}", headers=AUTH, timeout=10)
            return str(answer.json()["status"])

        if not wait(lambda: status() == "running", 20):
            problems.append("the held execution never started")
        filler = mount / "filler"
        fill(filler)
        gate.touch()
        wait(done.exists, 20)
        codes: dict[int, int] = {}
        for number in range(30):
            try:
                answer = requests.post(f"{base}/webhooks/held", json={"n": number}, timeout=10)
            except requests.RequestException as exc:
                problems.append(f"webhook while full: {type(exc).__name__}")
                continue
            codes[answer.status_code] = codes.get(answer.status_code, 0) + 1
            if answer.status_code >= 500 and (
                answer.status_code != 503 or "Retry-After" not in answer.headers
            ):
                problems.append(f"webhook while full answered {answer.status_code}")
        health = requests.get(f"{base}/healthz", timeout=10).status_code
        if health != 200:
            problems.append(f"/healthz while full answered {health}")
        filler.unlink()
        if not wait(lambda: status() != "running", 60):
            problems.append("the held execution stayed running after the disk freed up")
        final = status()
        logs = requests.get(f"{base}/admin/executions/{held}/logs", headers=AUTH, timeout=10)
        lines = [item["line"] for item in logs.json()["items"]]
        listing = requests.get(
            f"{base}/admin/executions?trigger=held&limit=200", headers=AUTH, timeout=10
        ).json()["items"]
        retries = [item for item in listing if item.get("retry_of") == held]
        accepted = requests.post(f"{base}/webhooks/held", json={"after": True}, timeout=10)
        if final != "succeeded":
            problems.append(f"the held execution ended {final}, not succeeded")
        if lines != [f"line{i}" for i in range(1, LINES + 1)]:
            problems.append(f"output after recovery: {len(lines)} lines, expected {LINES}")
        if retries:
            problems.append(f"{len(retries)} retries of an execution that succeeded")
        if accepted.status_code != 202:
            problems.append(f"webhook after recovery answered {accepted.status_code}")
        print(
            json.dumps(
                {
                    "answers_while_full": codes,
                    "healthz_while_full": health,
                    "held_execution": final,
                    "output_lines_kept": len(lines),
                    "retries": len(retries),
                    "after_recovery": accepted.status_code,
                },
                indent=2,
            )
        )
    finally:
        if server is not None:
            stop(server)
        subprocess.run(["umount", str(mount)], check=False)
    for problem in problems:
        print(f"problem: {problem}")
    print("PASS" if not problems else "FAIL")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
