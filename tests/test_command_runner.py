"""The command runner with real subprocesses: stopping process groups, output, ordering."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.execution.runners import command
from app.store import get_db
from tests.conftest import ENGINE_AUTH, wait_for

FINAL = {"succeeded", "failed", "timed_out", "cancelled", "interrupted"}


@pytest.fixture
def client(engine_app: Flask) -> FlaskClient:
    return engine_app.test_client()


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "KILL_GRACE_SECONDS", 0.5)


def _trigger(client: FlaskClient, name: str, action: dict[str, Any], **fields: Any) -> None:
    document = {"name": name, "auth": {"scheme": "none"}, "dedup": {"key": "none"}}
    response = client.post(
        "/admin/triggers", json={**document, "action": action, **fields}, headers=ENGINE_AUTH
    )
    assert response.status_code == 201, response.get_json()


def _command(*argv: str, **fields: Any) -> dict[str, Any]:
    return {"type": "command", "argv": list(argv), **fields}


def _send(client: FlaskClient, name: str, body: Any = None) -> str:
    response = client.post(f"/webhooks/{name}", json=body or {})
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["execution_id"])


def _execution(client: FlaskClient, execution_id: str) -> dict[str, Any]:
    return client.get(f"/admin/executions/{execution_id}", headers=ENGINE_AUTH).get_json()  # type: ignore[no-any-return]


def _finished(client: FlaskClient, execution_id: str) -> dict[str, Any]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (e := _execution(client, execution_id))["status"] in FINAL and e
    )


def _lines(client: FlaskClient, execution_id: str, stream: str | None = None) -> list[str]:
    response = client.get(
        f"/admin/executions/{execution_id}/logs?limit=1000", headers=ENGINE_AUTH
    ).get_json()
    items = response["items"]
    return [item["line"] for item in items if stream is None or item["stream"] == stream]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


# A grandchild that ignores SIGTERM and does not hold the output pipes: only a
# SIGKILL sent to the group after the grace period stops it.
def _stubborn(pidfile: Path) -> str:
    return (
        f'(trap "" TERM; exec sleep 103 >/dev/null 2>&1) & echo $! > {pidfile}; '
        "echo started; sleep 104"
    )


@pytest.mark.usefixtures("short_grace")
def test_timeout_kills_a_grandchild_that_ignores_sigterm(
    client: FlaskClient, tmp_path: Path
) -> None:
    pidfile = tmp_path / "stubborn.pid"
    _trigger(client, "stubborn", _command("/bin/sh", "-c", _stubborn(pidfile), timeout_seconds=1))
    execution = _finished(client, _send(client, "stubborn"))
    assert execution["status"] == "timed_out"
    grandchild = int(pidfile.read_text())
    try:
        wait_for(lambda: not alive(grandchild), timeout=5)
    finally:
        if alive(grandchild):
            os.kill(grandchild, 9)


@pytest.mark.usefixtures("short_grace")
def test_cancel_kills_a_grandchild_that_ignores_sigterm(
    client: FlaskClient, tmp_path: Path
) -> None:
    pidfile = tmp_path / "stubborn.pid"
    _trigger(client, "stubborn", _command("/bin/sh", "-c", _stubborn(pidfile)))
    execution_id = _send(client, "stubborn")
    wait_for(lambda: "started" in _lines(client, execution_id))
    response = client.post(f"/admin/executions/{execution_id}/cancel", headers=ENGINE_AUTH)
    assert response.status_code == 202
    assert _finished(client, execution_id)["status"] == "cancelled"
    grandchild = int(pidfile.read_text())
    try:
        wait_for(lambda: not alive(grandchild), timeout=5)
    finally:
        if alive(grandchild):
            os.kill(grandchild, 9)


_GUARDED_EXIT = textwrap.dedent(
    """
    import os, signal, subprocess
    from app.execution.runners import guard

    def group():
        return subprocess.Popen(["sleep", "301"], start_new_session=True).pid

    first = group()
    guard.watch(first)
    os.kill(guard.guard_pid(), signal.SIGKILL)  # the guard dies: the next call replaces it
    os.waitpid(guard.guard_pid(), 0)
    second = group()
    guard.watch(second)
    print(first, second, flush=True)
    os._exit(0)  # as abruptly as a SIGKILL: no cleanup runs
    """
)


def test_groups_die_with_the_process_that_watched_them_even_after_a_guard_restart() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _GUARDED_EXIT],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pids = [int(text) for text in result.stdout.split()]
    try:
        wait_for(lambda: not any(alive(pid) for pid in pids), timeout=10)
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, 9)


def _attempts(app: Flask, trigger: str) -> int:
    with app.app_context(), get_db().read() as conn:
        row = conn.execute("SELECT COUNT(*) FROM executions WHERE trigger = ?", (trigger,))
        return int(row.fetchone()[0])


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"argv": ["/bin/echo", "{{ body.value }}"]}, "argv[1]"),
        ({"argv": ["/bin/true"], "env": {"VALUE": "{{ body.value }}"}}, "env VALUE"),
    ],
)
def test_nul_byte_in_a_rendered_value_fails_clearly_without_retry(
    engine_app: Flask, client: FlaskClient, fields: dict[str, Any], where: str
) -> None:
    retry = {"max_attempts": 3, "backoff_seconds": 0}
    _trigger(client, "nul", {"type": "command", **fields}, retry=retry)
    execution = _finished(client, _send(client, "nul", {"value": "a\u0000b"}))
    assert execution["status"] == "failed"
    assert execution["error"] == (
        f"{where} renders to text with a NUL byte, which a program argument or "
        "environment variable cannot hold"
    )
    assert _attempts(engine_app, "nul") == 1


def test_cpu_heavy_template_fails_the_execution_without_retry(
    engine_app: Flask, client: FlaskClient
) -> None:
    retry = {"max_attempts": 3, "backoff_seconds": 0}
    argv = ["/bin/echo", "{{ lipsum(1000000) | length }}"]
    _trigger(client, "heavy", _command(*argv), retry=retry)
    execution = _finished(client, _send(client, "heavy"))
    assert execution["status"] == "failed"
    assert "lipsum is limited to 100 paragraphs" in execution["error"]
    assert _attempts(engine_app, "heavy") == 1
