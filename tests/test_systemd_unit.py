"""docs/deploy/hookrunner.service: valid for systemd, and right for a graceful drain."""

from __future__ import annotations

import os
import re
import runpy
import shutil
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for
from tests.server import PROJECT_ROOT, free_port, gunicorn_server

UNIT = PROJECT_ROOT / "docs" / "deploy" / "hookrunner.service"
SHIPPED_BINARY = "/opt/hookrunner/.venv/bin/gunicorn"
TOKEN = "unit-e2e-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

_SPAN_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


def _unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values, the way systemd reads a unit (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _seconds(span: str) -> float:
    """A systemd time span ("45", "45s", "1min 30s") in seconds."""
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span):
        total += float(number) * _SPAN_UNITS[unit or "s"]
    return total


def _service() -> dict[str, str]:
    """The [Service] section, each key's last value (the one systemd uses)."""
    return {key: values[-1] for key, values in _unit_settings(UNIT.read_text())["Service"].items()}


def _default_graceful_timeout(monkeypatch: pytest.MonkeyPatch) -> int:
    """graceful_timeout as gunicorn.conf.py computes it with nothing set in the environment."""
    monkeypatch.delenv("GUNICORN_GRACEFUL_TIMEOUT", raising=False)
    config = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    return int(config["graceful_timeout"])


def test_stop_sends_sigterm_to_the_master_and_waits_longer_than_gunicorns_drain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopping the unit drains: SIGTERM to Gunicorn's master only, and systemd's SIGKILL
    comes only after Gunicorn's own graceful_timeout (read from gunicorn.conf.py, so the two
    cannot drift apart unnoticed), with a margin for the master's exit."""
    service = _service()
    graceful_timeout = _default_graceful_timeout(monkeypatch)
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"
    stop_timeout = _seconds(service["TimeoutStopSec"])
    assert stop_timeout > graceful_timeout, (stop_timeout, graceful_timeout)
    assert stop_timeout - graceful_timeout >= 5, "leave the master time to exit after the drain"
    assert service.get("SendSIGKILL", "yes") == "yes"


def test_unit_runs_gunicorn_as_the_main_process_with_state_and_settings_in_place() -> None:
    """The unit starts Gunicorn itself (so the master is the main PID that KillSignal and
    NotifyAccess address), restarts it only on failure, runs it unprivileged in the state
    directory with the optional environment file, and confines its writes to that directory."""
    service = _service()
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    argv = service["ExecStart"].split()
    assert argv[0] == SHIPPED_BINARY
    assert argv[argv.index("--config") + 1] == "/opt/hookrunner/gunicorn.conf.py"
    assert "--daemon" not in argv and "-D" not in argv
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "-/etc/hookrunner/env"
    assert service["User"] == "hookrunner"
    assert service["WorkingDirectory"] == "/var/lib/hookrunner"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert "/var/lib/hookrunner" in service["ReadWritePaths"].split()
    assert service["PrivateTmp"] == "yes"
    assert int(service["LimitNOFILE"]) > 2000  # one worker's worker_connections default


def _verify(analyze: str, unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single complaint (verify exits 0
    on unknown keys and unparsable values, so its output has to be empty too). The shipped
    /opt/hookrunner path does not exist here, so a copy names this checkout's Gunicorn."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    control = tmp_path / "control" / "hookrunner-control.service"
    control.parent.mkdir()
    control.write_text(f"[Service]\nType=simple\nExecStart={sys.executable} -c pass\n")
    checked = _verify(analyze, control)
    if checked.returncode != 0 or checked.stderr.strip():
        pytest.skip(
            "systemd-analyze verify cannot run here (it rejects a trivial unit too): "
            + (checked.stderr.strip() or f"exit {checked.returncode}")
        )

    gunicorn = Path(sys.executable).with_name("gunicorn")
    assert gunicorn.exists(), gunicorn
    text = UNIT.read_text()
    assert text.count(SHIPPED_BINARY) == 1
    copy = tmp_path / "hookrunner.service"  # verify wants the real unit name
    copy.write_text(text.replace(SHIPPED_BINARY, str(gunicorn)))
    result = _verify(analyze, copy)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert result.stdout.strip() == "", result.stdout


@pytest.mark.slow
def test_gunicorn_tells_systemd_it_is_ready_from_the_main_process(tmp_path: Path) -> None:
    """Type=notify holds for the Gunicorn this project pins: the master sends READY=1 on
    $NOTIFY_SOCKET, from its own PID (what NotifyAccess=main accepts), and the server
    answers by then."""
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        notify.settimeout(30)
        with gunicorn_server(tmp_path, env={"NOTIFY_SOCKET": str(notify_path)}) as server:
            message, ancillary, _flags, _address = notify.recvmsg(4096, socket.CMSG_SPACE(12))
            assert requests.get(f"{server.base_url}/readyz", timeout=5).status_code == 200
            master = server.process.pid
    assert "READY=1" in message.decode().splitlines()
    credentials = [data for level, kind, data in ancillary if kind == socket.SCM_CREDENTIALS]
    assert credentials, ancillary
    sender_pid, _uid, _gid = struct.unpack("3i", credentials[0][:12])
    assert sender_pid == master


@pytest.mark.slow
def test_exec_start_serves_from_the_state_directory(tmp_path: Path) -> None:
    """The unit's ExecStart line, pointed at this checkout, serves Hookrunner from a working
    directory outside the checkout (as WorkingDirectory=/var/lib/hookrunner does): run.py,
    app/ and the migrations are found through --pythonpath, the default relative database
    is created in HOOKRUNNER_HOME (the state directory), and the commands triggers run
    start there."""
    argv = _service()["ExecStart"].split()
    argv = [str(Path(sys.executable).with_name("gunicorn"))] + [
        arg.replace("/opt/hookrunner", str(PROJECT_ROOT)) for arg in argv[1:]
    ]
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN_")}
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        ADMIN_TOKEN=TOKEN,
        SCHEDULER_ENABLED="0",
        GUNICORN_GRACEFUL_TIMEOUT="10",  # as tests/server.py: a quicker stop
        PYTHON_DOTENV_DISABLED="1",  # a developer's .env must not choose the database
    )
    unit_home = _service()["Environment"].partition("HOOKRUNNER_HOME=")[2]
    assert unit_home == "/var/lib/hookrunner"
    env["HOOKRUNNER_HOME"] = str(state)  # the unit's value, moved to this test's state dir
    base_url = f"http://127.0.0.1:{port}"
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return requests.get(f"{base_url}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=30, interval=0.1)
        document = {
            "name": "where",
            "auth": {"scheme": "none"},
            "dedup": {"key": "none"},
            "action": {"type": "command", "argv": ["/bin/pwd"]},
        }
        created = requests.post(
            f"{base_url}/admin/triggers", json=document, headers=AUTH, timeout=10
        )
        assert created.status_code == 201, created.text
        accepted = requests.post(f"{base_url}/webhooks/where", json={}, timeout=10)
        assert accepted.status_code == 202, accepted.text
        execution_url = f"{base_url}/admin/executions/{accepted.json()['execution_id']}"
        assert wait_for(
            lambda: (
                requests.get(execution_url, headers=AUTH, timeout=5).json()["status"] == "succeeded"
            )
        )
        logs = requests.get(f"{execution_url}/logs", headers=AUTH, timeout=5).json()["items"]
        assert [line["line"] for line in logs] == [os.path.realpath(state)]
        assert (state / "hookrunner.db").is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
