"""The engine behind a real Gunicorn gevent server: live SSE, kill -9, SIGTERM."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.store import SQLiteDatabase
from tests.conftest import wait_for
from tests.server import Server, gunicorn_server
from tests.test_command_runner import alive

pytestmark = pytest.mark.slow

TOKEN = "e2e-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _create(server: Server, name: str, argv: list[str]) -> None:
    document = {
        "name": name,
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": {"type": "command", "argv": argv},
    }
    response = requests.post(
        f"{server.base_url}/admin/triggers", json=document, headers=AUTH, timeout=5
    )
    assert response.status_code == 201, response.text


def _send(server: Server, name: str) -> dict[str, Any]:
    response = requests.post(f"{server.base_url}/webhooks/{name}", json={}, timeout=5)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def _status(server: Server, execution_id: str) -> str:
    url = f"{server.base_url}/admin/executions/{execution_id}"
    return str(requests.get(url, headers=AUTH, timeout=5).json()["status"])


def _events(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream into dicts with id, event and data."""
    event: dict[str, Any] = {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw == "":
            if "event" in event:
                yield event
            event = {}
        elif raw.startswith("id: "):
            event["id"] = raw[4:]
        elif raw.startswith("event: "):
            event["event"] = raw[7:]
        elif raw.startswith("data: "):
            event["data"] = json.loads(raw[6:])


def test_output_streams_live_and_resumes_with_last_event_id(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = f"echo one; while [ ! -f {gate} ]; do sleep 0.05; done; echo two"
    with gunicorn_server(tmp_path, env={"ADMIN_TOKEN": TOKEN}) as server:
        _create(server, "live", ["/bin/sh", "-c", script])
        accepted = _send(server, "live")
        url = f"{server.base_url}{accepted['stream_url']}"
        with requests.get(url, headers=AUTH, stream=True, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["Cache-Control"] == "no-cache"
            assert response.headers["X-Accel-Buffering"] == "no"
            seen: list[dict[str, Any]] = []
            for event in _events(response):
                seen.append(event)
                if event["event"] == "log" and event["data"]["line"] == "one":
                    # The command is still blocked on the gate: this line arrived live.
                    assert _status(server, accepted["execution_id"]) == "running"
                    gate.touch()
                if event["event"] == "end":
                    break
        logs = [e for e in seen if e["event"] == "log"]
        assert [(e["id"], e["data"]["line"]) for e in logs] == [("1", "one"), ("2", "two")]
        assert seen[-1]["data"]["status"] == "succeeded"

        resumed_headers = {**AUTH, "Last-Event-ID": "1"}
        with requests.get(url, headers=resumed_headers, stream=True, timeout=30) as response:
            resumed = list(_events(response))
        assert [e["data"]["line"] for e in resumed if e["event"] == "log"] == ["two"]
        assert resumed[-1]["event"] == "end"


def test_kill_9_mid_execution_then_restart_leaves_nothing_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    with gunicorn_server(tmp_path, env={"ADMIN_TOKEN": TOKEN}) as server:
        # The short pause lets the engine hand the command's group to its guard first.
        _create(server, "crash", ["/bin/sh", "-c", f"sleep 0.3; echo $$ > {pidfile}; sleep 300"])
        execution_id = _send(server, "crash")["execution_id"]
        wait_for(lambda: _status(server, execution_id) == "running")
        # "running" is recorded at claim time; wait for the command itself to start.
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit())
        server.kill_hard()
    # The dead engine's guard kills the command it left behind.
    wait_for(lambda: not alive(int(pidfile.read_text())))

    with gunicorn_server(tmp_path, env={"ADMIN_TOKEN": TOKEN}) as restarted:
        assert wait_for(lambda: _status(restarted, execution_id) == "interrupted")


def test_sigterm_lets_running_work_finish_or_records_it_interrupted(tmp_path: Path) -> None:
    env = {"ADMIN_TOKEN": TOKEN, "GUNICORN_GRACEFUL_TIMEOUT": "6"}
    with gunicorn_server(tmp_path, env=env) as server:
        _create(server, "short", ["/bin/sh", "-c", "echo started; sleep 1; echo done"])
        _create(server, "long", ["/bin/sh", "-c", "echo started; sleep 300"])
        short_id = _send(server, "short")["execution_id"]
        long_id = _send(server, "long")["execution_id"]
        wait_for(
            lambda: _status(server, short_id) == "running" and _status(server, long_id) == "running"
        )
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
    db = SQLiteDatabase(str(tmp_path / "server.db"))
    with db.read() as conn:
        statuses = dict(conn.execute("SELECT id, status FROM executions").fetchall())
    assert statuses == {short_id: "succeeded", long_id: "interrupted"}
