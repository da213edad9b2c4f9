"""``response.mode: wait`` and ``files`` behind a real Gunicorn, in the default deployment:
the web worker records the delivery and waits while an engine process runs the command
(woken across processes by the doorbell on SQLite, by LISTEN/NOTIFY on PostgreSQL)."""

from __future__ import annotations

import base64
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import PostgresServer, _pg_url, wait_for
from tests.server import Server, gunicorn_server
from tests.test_engine_e2e import AUTH, TOKEN
from tests.test_engine_processes_e2e import _engine_pids, _execution

pytestmark = pytest.mark.slow

_ENV = {"ADMIN_TOKEN": TOKEN, "ENGINE_PROCESSES": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with gunicorn_server(tmp_path_factory.mktemp("wait"), env=_ENV, workers=1) as started:
        wait_for(lambda: len(_engine_pids(started)) == 1)
        yield started


def _create(server: Server, name: str, action: dict[str, Any], **fields: Any) -> None:
    document = {
        "name": name,
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": action,
        **fields,
    }
    response = requests.post(
        f"{server.base_url}/admin/triggers", json=document, headers=AUTH, timeout=5
    )
    assert response.status_code == 201, response.text


def _sh(script: str, **fields: Any) -> dict[str, Any]:
    return {"type": "command", "argv": ["/bin/sh", "-c", script], **fields}


def _post(server: Server, name: str, body: Any = None) -> requests.Response:
    return requests.post(f"{server.base_url}/webhooks/{name}", json=body or {}, timeout=60)


def _wait(**fields: Any) -> dict[str, Any]:
    return {"mode": "wait", "timeout_seconds": 30, **fields}


def test_success_answers_200_with_the_output_from_the_engine_process(
    server: Server, tmp_path: Path
) -> None:
    parent = tmp_path / "parent"
    _create(
        server,
        "ok",
        _sh(f"echo $PPID > {parent}; echo hello {{{{ body.who }}}}; echo warn >&2", stderr="merge"),
        response=_wait(body="output"),
    )
    answered = _post(server, "ok", {"who": "world"})
    assert answered.status_code == 200
    assert answered.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answered.text == "hello world\nwarn\n"
    assert int(parent.read_text()) in _engine_pids(server)  # not the web worker that waited


def test_failure_answers_500_with_the_failure_body(server: Server) -> None:
    _create(
        server,
        "ko",
        _sh("echo broken; exit 7"),
        response=_wait(body="output", failure_body="exit {{ exit_code }} ({{ status }})"),
    )
    answered = _post(server, "ko")
    assert answered.status_code == 500
    assert answered.text == "exit 7 (failed)"


def test_templates_see_exit_code_output_and_the_request(server: Server) -> None:
    _create(
        server,
        "tpl",
        _sh("echo built {{ body.ref }}"),
        response=_wait(
            status={"success": 201},
            headers={"X-Execution": "{{ execution_id }}", "Content-Type": "application/json"},
            body='{"code": {{ exit_code }}, "out": {{ output | trim | tojson }}, '
            '"ref": "{{ body.ref }}", "status": "{{ status }}"}',
        ),
    )
    answered = _post(server, "tpl", {"ref": "main"})
    assert answered.status_code == 201
    assert answered.json() == {"code": 0, "out": "built main", "ref": "main", "status": "succeeded"}
    assert _execution(server, answered.headers["X-Execution"])["status"] == "succeeded"


def test_output_is_capped(server: Server) -> None:
    script = "i=0; while [ $i -lt 5000 ]; do echo 0123456789; i=$((i+1)); done"
    _create(server, "big", _sh(script), response=_wait(body="output", max_output_bytes=1000))
    answered = _post(server, "big")
    assert answered.status_code == 200
    assert answered.content == (b"0123456789\n" * 91)[:1000]
    assert answered.headers["Hookrunner-Output-Truncated"] == "true"


def test_a_wait_that_runs_out_is_202_and_the_execution_still_finishes(
    server: Server, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    script = f"while [ ! -f {gate} ]; do sleep 0.05; done; echo done"
    _create(server, "slow", _sh(script), response=_wait(timeout_seconds=0.5, body="output"))
    answered = _post(server, "slow")
    assert answered.status_code == 202
    acknowledgement = answered.json()
    assert acknowledgement["status"] == "accepted"
    execution_id = acknowledgement["execution_id"]
    assert _execution(server, execution_id)["status"] in ("queued", "running")
    gate.touch()
    wait_for(lambda: _execution(server, execution_id)["status"] == "succeeded")


def test_a_duplicate_waits_for_the_running_original_and_then_gets_its_stored_result(
    server: Server, tmp_path: Path
) -> None:
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    script = f"echo run >> {runs}; while [ ! -f {gate} ]; do sleep 0.05; done; echo result"
    _create(
        server,
        "dedup",
        _sh(script),
        dedup={"key": "jmespath:body.id"},
        response=_wait(body="{{ execution_id }}:{{ output }}"),
    )
    answers: list[requests.Response] = []
    first = threading.Thread(target=lambda: answers.append(_post(server, "dedup", {"id": 1})))
    first.start()
    wait_for(runs.exists)  # the original runs
    duplicate = threading.Thread(target=lambda: answers.append(_post(server, "dedup", {"id": 1})))
    duplicate.start()

    def outcomes() -> list[str]:
        url = f"{server.base_url}/admin/deliveries?trigger=dedup"
        items = requests.get(url, headers=AUTH, timeout=5).json()["items"]
        return sorted(item["outcome"] for item in items)

    wait_for(lambda: outcomes() == ["accepted", "duplicate"])  # both now wait
    gate.touch()
    first.join(60)
    duplicate.join(60)
    later = _post(server, "dedup", {"id": 1})  # the original has ended: its stored result
    assert [answer.status_code for answer in [*answers, later]] == [200, 200, 200]
    assert len({answer.text for answer in [*answers, later]}) == 1
    execution_id, output = later.text.split(":", 1)
    assert output == "result\n"
    assert runs.read_text() == "run\n"
    assert _execution(server, execution_id)["status"] == "succeeded"


def test_files_with_and_without_base64_and_removed_afterwards(
    server: Server, tmp_path: Path
) -> None:
    paths = tmp_path / "paths"
    script = f'echo "$CONFIG $KEY" > {paths}; cat "$CONFIG"; od -An -tx1 "$KEY"'
    files = {
        "CONFIG": {"content": "target={{ body.target }}\n"},
        "KEY": {"content": "{{ body.key }}", "base64": True},
    }
    _create(server, "files", _sh(script, files=files), response=_wait(body="output"))
    key = base64.b64encode(b"\x00\x10\xfe").decode()
    answered = _post(server, "files", {"target": "prod", "key": key})
    assert answered.status_code == 200, answered.text
    assert answered.text == "target=prod\n 00 10 fe\n"
    config, secret = paths.read_text().split()
    assert os.path.dirname(config) == os.path.dirname(secret)
    assert not os.path.exists(config) and not os.path.exists(secret)
    assert not os.path.exists(os.path.dirname(config))


def test_files_left_by_a_killed_engine_are_removed_by_the_engine_that_replaces_it(
    server: Server, tmp_path: Path
) -> None:
    path_file = tmp_path / "path"
    script = f'echo "$F" > {path_file}; exec sleep 300'
    _create(server, "killed", _sh(script, files={"F": {"content": "secret"}}))
    execution_id = _post(server, "killed").json()["execution_id"]
    wait_for(lambda: path_file.exists() and path_file.read_text().strip())
    directory = os.path.dirname(path_file.read_text().strip())
    assert os.path.isdir(directory)
    (engine,) = _engine_pids(server)
    os.kill(engine, signal.SIGKILL)
    wait_for(lambda: _execution(server, execution_id)["status"] == "interrupted")
    wait_for(lambda: not os.path.exists(directory))


def test_wait_on_postgresql_across_processes(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    name = postgres_server.create()
    try:
        env = {**_ENV, "DATABASE_URL": _pg_url(name)}
        with gunicorn_server(tmp_path, env=env, workers=1) as pg:
            wait_for(lambda: len(_engine_pids(pg)) == 1)
            _create(
                pg,
                "pg",
                _sh("echo from $HOOKRUNNER_TRIGGER; exit {{ body.code }}"),
                response=_wait(body="output", status={"failure": 502}),
            )
            ok, failed = _post(pg, "pg", {"code": 0}), _post(pg, "pg", {"code": 1})
            assert (ok.status_code, ok.text) == (200, "from pg\n")
            assert (failed.status_code, failed.text) == (502, "from pg\n")
    finally:
        postgres_server.drop(name)


def test_wait_in_single_process_mode(tmp_path: Path) -> None:
    env = {**_ENV, "ENGINE_PROCESSES": "0"}
    with gunicorn_server(tmp_path, env=env, workers=1) as single:
        assert not _engine_pids(single)
        _create(single, "here", _sh("echo $PPID"), response=_wait(body="output"))
        answered = _post(single, "here")
        assert answered.status_code == 200
        assert "gunicorn" in Path(f"/proc/{int(answered.text)}/cmdline").read_text()
