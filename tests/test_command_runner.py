"""The command runner with real subprocesses: stopping process groups, output, ordering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.execution.runners import command, pipes
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


ORDER_SCRIPT = "echo o1; echo e1 >&2; echo o2; echo e2 >&2; sleep 0.2; echo o3; echo e3 >&2"


def test_merged_stderr_keeps_the_exact_order_of_both_streams(client: FlaskClient) -> None:
    _trigger(client, "ordered", _command("/bin/sh", "-c", ORDER_SCRIPT, stderr="merge"))
    for _ in range(5):
        execution = _finished(client, _send(client, "ordered"))
        assert execution["status"] == "succeeded"
        assert _lines(client, execution["id"]) == ["o1", "e1", "o2", "e2", "o3", "e3"]
        assert set(_lines(client, execution["id"], "stdout")) == {
            "o1",
            "e1",
            "o2",
            "e2",
            "o3",
            "e3",
        }


def test_separate_streams_keep_each_streams_order_and_label(client: FlaskClient) -> None:
    _trigger(client, "apart", _command("/bin/sh", "-c", ORDER_SCRIPT))
    execution = _finished(client, _send(client, "apart"))
    assert _lines(client, execution["id"], "stdout") == ["o1", "o2", "o3"]
    assert _lines(client, execution["id"], "stderr") == ["e1", "e2", "e3"]
    lines = _lines(client, execution["id"])
    # Output written after a pause comes after everything written before it.
    assert set(lines[:4]) == {"o1", "e1", "o2", "e2"}
    assert set(lines[4:]) == {"o3", "e3"}


def _dropped(lines: list[str]) -> int:
    notice = lines[-1]
    assert notice.startswith("[output truncated: "), notice
    return int(notice.split()[2])


def _stored(app: Flask, execution_id: str) -> list[str]:
    with app.app_context(), get_db().read() as conn:
        rows = conn.execute(
            "SELECT line FROM execution_logs WHERE execution_id = ? ORDER BY seq", (execution_id,)
        )
        return [str(row[0]) for row in rows]


def test_flood_past_the_cap_is_counted_as_dropped_and_the_run_finishes(
    engine_app: Flask, client: FlaskClient
) -> None:
    total = 5_000_000
    flood = _command("/bin/sh", "-c", f"yes 2>/dev/null | head -c {total}", max_output_bytes=16384)
    _trigger(client, "flood", flood)
    execution = _finished(client, _send(client, "flood"))
    assert execution["status"] == "succeeded"
    assert execution["report"]["output_truncated"] is True
    lines = _stored(engine_app, execution["id"])
    stored = [line for line in lines[:-1] if line == "y"]
    assert execution["output_bytes"] == 2 * len(stored) <= 16384
    assert execution["output_bytes"] + _dropped(lines) == total


def test_output_limit_stop_ends_a_command_that_never_stops_talking(
    engine_app: Flask, client: FlaskClient
) -> None:
    retry = {"max_attempts": 2, "backoff_seconds": 0}
    endless = _command("/usr/bin/yes", max_output_bytes=16384, on_output_limit="stop")
    _trigger(client, "endless", endless, retry=retry)
    execution = _finished(client, _send(client, "endless"))
    assert execution["status"] == "failed"
    assert execution["error"] == "stopped: output reached max_output_bytes (16384)"
    assert execution["report"]["output_truncated"] is True
    assert _attempts(engine_app, "endless") == 1


# Under gevent, as in a Gunicorn worker: a greenlet notes how much output the
# runner got through between two of its turns. Reading must yield regularly,
# so that amount stays small however fast the command writes.
_FLOOD_UNDER_GEVENT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, signal, sys, gevent
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    from app.execution.runners.base import RunContext
    from app.execution.runners.command import run_command
    from app.triggers.schema import CommandAction

    class Sink:
        def __init__(self, cap):
            self.cap, self.bytes, self.dropped, self.full = cap, 0, 0, False
        def line(self, stream, text):
            self.lines(stream, [text])
        def lines(self, stream, texts):
            for text in texts:
                if self.full or self.bytes + len(text) + 1 > self.cap:
                    self.full = True
                    self.dropped += len(text) + 1
                else:
                    self.bytes += len(text) + 1
        def discard(self, count):
            self.full, self.dropped = True, self.dropped + count
        def system(self, text):
            pass

    total, cap = int(sys.argv[1]), int(sys.argv[2])
    sink = Sink(cap)
    script = f"yes 2>/dev/null | head -c {total}"
    action = CommandAction(type="command", argv=["/bin/sh", "-c", script], max_output_bytes=cap)
    ctx = RunContext(execution_id="e", delivery_id=None, trigger="t", request_id=None,
                     raw_body=b"", content_type=None, template_context={}, secrets=[],
                     output=sink, settings=None, breakers=None)
    most, done = 0, False
    def watch():
        global most
        last = 0
        while not done:
            seen = sink.bytes + sink.dropped
            most, last = max(most, seen - last), seen
            gevent.sleep(0)
    gevent.spawn(watch)
    gevent.sleep(0)
    result = run_command(action, ctx)
    done = True
    print(json.dumps({"status": result.status, "seen": sink.bytes + sink.dropped, "most": most}))
    """
)


@pytest.mark.parametrize("cap", [16384, 4 * 1024 * 1024])
def test_a_flood_of_short_lines_lets_other_greenlets_run(cap: int) -> None:
    total = 5_000_000
    result = subprocess.run(
        [sys.executable, "-c", _FLOOD_UNDER_GEVENT, str(total), str(cap)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["status"] == "succeeded"
    assert seen["seen"] == total
    assert seen["most"] <= pipes.DRAIN_CHUNK  # bytes handled between two turns of the watcher
