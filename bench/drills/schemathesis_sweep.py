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
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2]))  # the server helper of tests/
from tests.server import free_port, start_gunicorn, stop

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
    port = free_port()
    log = workdir / "server.log"
    env = {"ADMIN_TOKEN": TOKEN, "ENGINE_ENABLED": "0"}
    server = start_gunicorn(workdir / "sweep.db", port, log, env)
    try:
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
        stop(server)
    # A process of the server tree may still be writing its last line: read whole lines.
    lines = log.read_text(errors="replace").splitlines(keepends=True)
    server_errors = [
        line
        for line in lines
        if line.startswith("{") and line.endswith("\n") and json.loads(line).get("status", 0) >= 500
    ]
    print(f"schemathesis exit code {result.returncode}; 5xx access lines: {len(server_errors)}")
    ok = result.returncode == 0 and not server_errors
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
