"""Start and stop a real Hookrunner (``gunicorn -c gunicorn.conf.py``) for the drills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 30


def start(db_path: Path, port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Serve ``db_path`` on 127.0.0.1:``port`` in its own session; return once ready."""
    full_env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "SCHEDULER_ENABLED": "0",
        **env,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    stop(process)
    raise SystemExit(f"server did not become ready; see {log}")


def stop(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    """Signal the server's whole process group and wait for the master."""
    os.killpg(process.pid, signum)
    process.wait(timeout=60)
