"""End to end on a real Gunicorn: TRIGGERS_FILE at start-up, and ``hookrunner tail``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GITHUB_SECRET, PUSH, github_headers
from tests.server import PROJECT_ROOT, gunicorn_server, http_request

pytestmark = pytest.mark.slow

FILE = """
- name: deploy
  auth: {scheme: github, secrets: ["${DEPLOY_SECRET}"]}
  action:
    type: command
    argv: ["/bin/sh", "-c", "echo out-line; echo err-line >&2; sleep 1; echo done; exit 7"]
"""


def test_triggers_file_at_start_up_and_tail_follows_to_the_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "triggers.yaml"
    path.write_text(FILE, encoding="utf-8")
    env = {"TRIGGERS_FILE": str(path), "DEPLOY_SECRET": GITHUB_SECRET}
    with gunicorn_server(tmp_path, env=env) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        status, body = http_request(
            port, "POST", "/webhooks/deploy", PUSH, github_headers(PUSH, "e2e-1")
        )
        assert status == 202, body
        execution_id = json.loads(body)["execution_id"]
        tail = subprocess.run(
            [sys.executable, "-c", "from app.cli import main; main()", "tail", execution_id],
            cwd=PROJECT_ROOT,
            env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'server.db'}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert tail.returncode == 7, tail.stderr
    assert tail.stdout.splitlines() == ["out-line", "done"]
    assert "err-line" in tail.stderr
