#!/usr/bin/env python3
"""Prove the wheel is enough: build it, install it without dev extras, run a delivery.

Steps: build the wheel of this checkout; install it into a fresh venv (runtime
dependencies only); from an empty directory run ``hookrunner migrate``,
``hookrunner create-token`` and ``hookrunner serve`` on a free loopback port;
wait for ``/readyz``; create a GitHub-signed command trigger through the admin
API; send one signed delivery; expect 202 and an execution that succeeds with
the expected output; the dashboard's sign-in page and static files are served.
Exits non-zero (with the server log) on any failure.
Standard library only, so it runs with any Python 3.11+.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECRET = "install-check-secret"
DEADLINE_SECONDS = 60


def run(*argv: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(map(str, argv)), flush=True)
    return subprocess.run([str(a) for a in argv], check=True, text=True, **kwargs)


def request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # loopback only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def fetch_text(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def wait_until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise SystemExit(f"install check: {what} did not happen within {DEADLINE_SECONDS} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check(work: Path) -> None:
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", ROOT)
    (wheel,) = (work / "dist").glob("hookrunner-*.whl")
    run(sys.executable, "-m", "venv", work / "venv")
    venv_bin = work / "venv" / "bin"
    run(venv_bin / "pip", "install", "-q", wheel)

    empty = work / "empty"
    empty.mkdir()
    port = free_port()
    env = {
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(work),
        "HOOKRUNNER_HOME": str(work / "data"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "SCHEDULER_ENABLED": "0",
        "LOG_FORMAT": "text",
    }
    hookrunner = venv_bin / "hookrunner"
    run(hookrunner, "--version", cwd=empty, env=env)
    run(hookrunner, "migrate", cwd=empty, env=env)
    token = run(
        hookrunner, "create-token", "--name", "ci", cwd=empty, env=env, stdout=subprocess.PIPE
    )
    auth = {"Authorization": f"Bearer {token.stdout.strip()}"}

    log_path = work / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(hookrunner), "serve"],
            cwd=empty,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            exercise(base, auth, server)
        except BaseException:
            print(log_path.read_text(errors="replace"), file=sys.stderr)
            raise
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    leftovers = list(empty.iterdir())
    if leftovers:
        raise SystemExit(f"install check: files written to the working directory: {leftovers}")


def exercise(base: str, auth: dict[str, str], server: subprocess.Popen[bytes]) -> None:
    def ready() -> bool:
        if server.poll() is not None:
            raise SystemExit("install check: the server exited early")
        return request("GET", f"{base}/readyz")[0] == 200

    wait_until("/readyz answering 200", ready)
    trigger = {
        "name": "install-check",
        "auth": {"scheme": "github", "secrets": [SECRET]},
        "action": {"type": "command", "argv": [sys.executable, "-c", "print('{{ body.after }}')"]},
    }
    status, created = request(
        "POST",
        f"{base}/admin/triggers",
        json.dumps(trigger).encode(),
        {**auth, "Content-Type": "application/json"},
    )
    if status != 201:
        raise SystemExit(f"install check: creating the trigger answered {status}: {created}")

    body = json.dumps({"ref": "refs/heads/main", "after": "abc123"}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    status, accepted = request(
        "POST",
        f"{base}/webhooks/install-check",
        body,
        {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "install-check-1",
            "X-Hub-Signature-256": f"sha256={signature}",
        },
    )
    if status != 202:
        raise SystemExit(f"install check: the signed delivery answered {status}: {accepted}")
    execution = f"{base}/admin/executions/{accepted['execution_id']}"

    def finished() -> Any:
        view = request("GET", execution, headers=auth)[1]
        return view if view.get("status") not in ("queued", "running") else None

    final = wait_until("the execution finishing", finished)
    if final["status"] != "succeeded":
        raise SystemExit(f"install check: the execution ended {final['status']}: {final}")
    logs = request("GET", f"{execution}/logs", headers=auth)[1]
    if "abc123" not in json.dumps(logs):
        raise SystemExit(f"install check: the output misses the rendered argument: {logs}")
    # The dashboard's templates and static files are in the wheel.
    for path, expected in (
        ("/ui/login", 'name="token"'),
        ("/ui/static/dashboard.css", "prefers-color-scheme"),
        ("/ui/static/dashboard.js", "EventSource"),
    ):
        status, text = fetch_text(f"{base}{path}")
        if status != 200 or expected not in text:
            raise SystemExit(f"install check: {path} answered {status}: {text[:300]}")
    print(
        "install check: wheel installed, served from an empty directory, delivery executed,"
        " dashboard served"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hookrunner-install-") as work:
        check(Path(work))


if __name__ == "__main__":
    main()
