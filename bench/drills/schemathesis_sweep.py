"""Drill: schemathesis against /openapi.json with an admin token finds no 5xx.

Starts a real Gunicorn server on a temp database, runs ``schemathesis run``
with the ``not_a_server_error`` check for a bounded time, and also fails if
the server logged any 5xx access line. Needs the ``bench`` extras
(``pip install -e '.[bench]'``). Targets 127.0.0.1 only.

    python bench/drills/schemathesis_sweep.py [--max-time 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "schemathesis-admin-token-0123456789abcdef"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=int, default=60)
    args = parser.parse_args()
    cli = shutil.which("schemathesis")
    if cli is None:
        print("schemathesis is not installed: pip install -e '.[bench]'")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="hookrunner-sweep-"))
    port = 19000 + os.getpid() % 1000
    log = workdir / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'sweep.db'}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "ADMIN_TOKEN": TOKEN,
        "SCHEDULER_ENABLED": "0",
        "ENGINE_ENABLED": "0",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for _ in range(300):
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        result = subprocess.run(
            [
                cli,
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "-H",
                f"Authorization: Bearer {TOKEN}",
                "--checks",
                "not_a_server_error",
                "--max-time",
                str(args.max_time),
                "--workers",
                "2",
            ],
            check=False,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    server_errors = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("{") and json.loads(line).get("status", 0) >= 500
    ]
    print(f"schemathesis exit code {result.returncode}; 5xx access lines: {len(server_errors)}")
    ok = result.returncode == 0 and not server_errors
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
