"""Web workers and engine processes under one real Gunicorn: who runs what, and crashes.

The default deployment runs executions in engine processes started and
supervised next to the web workers; these tests look at the processes
themselves (``/proc``), not at timings.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import wait_for
from tests.server import Server, gunicorn_server
from tests.test_command_runner import alive
from tests.test_engine_e2e import AUTH, TOKEN, _create, _send

pytestmark = pytest.mark.slow


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _execution(server: Server, execution_id: str) -> dict[str, Any]:
    url = f"{server.base_url}/admin/executions/{execution_id}"
    return requests.get(url, headers=AUTH, timeout=5).json()  # type: ignore[no-any-return]


def _engine_pids(server: Server) -> set[int]:
    """Engine processes in the server's process group."""
    group = os.getpgid(server.process.pid)
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            if "app.execution.process" in _cmdline(int(entry.name)):
                pids.add(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


def test_executions_run_in_engine_processes_with_the_webhooks_request_id(tmp_path: Path) -> None:
    parent_file = tmp_path / "parent"
    env = {"ADMIN_TOKEN": TOKEN, "ENGINE_PROCESSES": "2", "LOG_LEVEL": "INFO"}
    with gunicorn_server(tmp_path, env=env, workers=1) as server:
        wait_for(lambda: len(_engine_pids(server)) == 2)
        _create(server, "where", ["/bin/sh", "-c", f"echo $PPID > {parent_file}"])
        accepted = _send(server, "where")
        wait_for(lambda: _execution(server, accepted["execution_id"])["status"] == "succeeded")
        parent = int(parent_file.read_text())
        assert parent in _engine_pids(server)  # not the web worker that took the webhook
        started = [
            json.loads(line)
            for line in server.log_lines()
            if line.startswith("{") and '"execution started"' in line
        ]
    assert [line["request_id"] for line in started] == [accepted["request_id"]]
    assert started[0]["execution_id"] == accepted["execution_id"]


def test_a_killed_engine_is_restarted_and_its_execution_ends_interrupted(tmp_path: Path) -> None:
    pidfile = tmp_path / "command.pid"
    env = {"ADMIN_TOKEN": TOKEN, "ENGINE_PROCESSES": "1"}
    with gunicorn_server(tmp_path, env=env, workers=1) as server:
        wait_for(lambda: len(_engine_pids(server)) == 1)
        (engine,) = _engine_pids(server)
        _create(server, "long", ["/bin/sh", "-c", f"echo $$ > {pidfile}; exec sleep 300"])
        execution_id = _send(server, "long")["execution_id"]
        wait_for(pidfile.exists)
        wait_for(lambda: pidfile.read_text().strip().isdigit())
        command = int(pidfile.read_text())

        os.kill(engine, signal.SIGKILL)

        # The supervisor starts a new engine; it reaps the dead one's lease at start-up,
        # and the dead engine's guard has killed the command it left behind.
        wait_for(lambda: _engine_pids(server) - {engine})
        wait_for(lambda: _execution(server, execution_id)["status"] == "interrupted")
        wait_for(lambda: not alive(command))
        # Work goes on in the new engine.
        _create(server, "after", ["/bin/true"])
        after = _send(server, "after")["execution_id"]
        wait_for(lambda: _execution(server, after)["status"] == "succeeded")
        assert server.process.poll() is None  # the web side never noticed


def test_single_process_mode_runs_executions_in_the_web_worker(tmp_path: Path) -> None:
    parent_file = tmp_path / "parent"
    env = {"ADMIN_TOKEN": TOKEN, "ENGINE_PROCESSES": "0"}
    with gunicorn_server(tmp_path, env=env, workers=1) as server:
        _create(server, "here", ["/bin/sh", "-c", f"echo $PPID > {parent_file}"])
        accepted = _send(server, "here")
        wait_for(lambda: _execution(server, accepted["execution_id"])["status"] == "succeeded")
        assert not _engine_pids(server)
        assert "gunicorn" in _cmdline(int(parent_file.read_text()))
