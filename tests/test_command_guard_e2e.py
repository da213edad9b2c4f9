"""Behind a real Gunicorn: a command does not outlive the SIGKILL of the process running it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for
from tests.server import gunicorn_server
from tests.test_command_runner import alive

pytestmark = pytest.mark.slow

TOKEN = "e2e-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _parent_pid(pid: int) -> int:
    """The process that spawned ``pid`` (an engine process by default)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def _pids(path: Path) -> list[int]:
    return [int(text) for text in path.read_text().split()] if path.exists() else []


def test_killed_workers_command_group_is_gone_before_its_retry_starts(tmp_path: Path) -> None:
    # Each attempt records its own pid and a background grandchild's, then waits.
    script = (
        f'out={tmp_path}/"$HOOKRUNNER_EXECUTION_ID".pids; sleep 300 & '
        'echo $$ $! > "$out.tmp"; mv "$out.tmp" "$out"; wait'
    )
    document = {
        "name": "guarded",
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": {"type": "command", "argv": ["/bin/sh", "-c", script]},
        "concurrency": {"max": 1},
        "retry": {"max_attempts": 2, "backoff_seconds": 0},
    }
    first_pids: list[int] = []
    try:
        with gunicorn_server(tmp_path, env={"ADMIN_TOKEN": TOKEN}) as server:
            url = f"{server.base_url}/admin/triggers"
            assert requests.post(url, json=document, headers=AUTH, timeout=5).status_code == 201
            accepted = requests.post(f"{server.base_url}/webhooks/guarded", json={}, timeout=5)
            first = tmp_path / f"{accepted.json()['execution_id']}.pids"
            first_pids = wait_for(lambda: _pids(first))
            assert all(alive(pid) for pid in first_pids)

            runner = _parent_pid(first_pids[0])
            assert runner != server.process.pid
            os.kill(runner, signal.SIGKILL)  # the process running it, not the master
            retry = wait_for(
                lambda: next((p for p in tmp_path.glob("*.pids") if p != first), None), 60
            )
            # The retry is running: nothing of the first attempt may still be.
            assert [pid for pid in first_pids if alive(pid)] == []
            assert all(alive(pid) for pid in _pids(retry))
    finally:
        for pid in first_pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
