"""``response.mode: wait`` and a command's ``files``: the schema, and the app in process
with its engine (both stores). The real-Gunicorn cases are in test_wait_response_e2e.py."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError

from app.execution.runners.base import RunContext
from app.execution.runners.command import run_command
from app.store import Database, execution_logs, get_db
from app.triggers.response_schema import ResponseSpec
from app.triggers.schema import CommandAction, TriggerDocument
from app.triggers.templates import TemplateRenderError, render_command
from tests.conftest import ENGINE_AUTH, wait_for
from tests.test_http_runner import Reply, _Server


def _document(name: str, action: dict[str, Any], **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": name,
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": action,
    }
    document.update(fields)
    return document


def _command(script: str, **fields: Any) -> dict[str, Any]:
    return {"type": "command", "argv": ["/bin/sh", "-c", script], **fields}


# --- schema -------------------------------------------------------------------------------


def test_wait_response_validates_with_its_defaults() -> None:
    spec = ResponseSpec.model_validate({"mode": "wait", "body": "output"})
    assert spec.success_status() == 200
    assert spec.status.failure == 500
    assert spec.timeout_seconds == 10
    assert spec.max_output_bytes == 64 * 1024
    assert ResponseSpec.model_validate({"mode": "async"}).success_status() == 202
    shorthand = ResponseSpec.model_validate({"mode": "wait", "status": 201})
    assert (shorthand.success_status(), shorthand.status.failure) == (201, 500)


@pytest.mark.parametrize(
    ("response", "wrong"),
    [
        ({"body": "output"}, 'needs mode "wait"'),
        ({"mode": "later"}, "mode"),
        ({"mode": "wait", "timeout_seconds": 0}, "timeout_seconds"),
        ({"mode": "wait", "status": {"failure": 99}}, "failure"),
        ({"mode": "wait", "body": "{{ output "}, "does not compile"),
        ({"mode": "wait", "failure_body": "{% if %}"}, "does not compile"),
        ({"mode": "wait", "max_output_bytes": -1}, "max_output_bytes"),
    ],
)
def test_wrong_wait_responses_are_refused(response: dict[str, Any], wrong: str) -> None:
    with pytest.raises(ValidationError, match=wrong):
        ResponseSpec.model_validate(response)


def test_files_validate_and_wrong_ones_are_refused() -> None:
    action = CommandAction.model_validate(
        _command(
            "cat $F", files={"F": {"content": "{{ body.x }}"}, "G": {"content": "", "base64": True}}
        )
    )
    assert action.files["G"].base64 is True
    for files, wrong in [
        ({"1BAD": {"content": "x"}}, "invalid environment variable name"),
        ({"HOOKRUNNER_X": {"content": "x"}}, "set by Hookrunner"),
        ({"F": {"content": "{{ nope"}}, "does not compile"),
        ({"F": {"content": "x", "mode": "0644"}}, "Extra inputs"),
    ]:
        with pytest.raises(ValidationError, match=wrong):
            CommandAction.model_validate(_command("true", files=files))
    with pytest.raises(ValidationError, match="set by both env and files"):
        CommandAction.model_validate(_command("true", env={"F": "x"}, files={"F": {"content": ""}}))


def test_file_contents_render_with_argv_and_base64_is_decoded() -> None:
    action = CommandAction.model_validate(
        _command(
            "true",
            files={
                "TEXT": {"content": "ref={{ body.ref }}\n"},
                "BIN": {"content": "{{ body.blob }}", "base64": True},
                "BAD": {"content": "not base64!", "base64": True},
            },
        )
    )
    context = {"body": {"ref": "main", "blob": base64.b64encode(b"\x00\xff").decode()}}
    with pytest.raises(TemplateRenderError, match="files BAD: the content is not valid base64"):
        render_command(action, context)
    del action.files["BAD"]
    rendered = render_command(action, context)
    assert rendered.files == {"TEXT": b"ref=main\n", "BIN": b"\x00\xff"}
    assert rendered.shown()["files"] == {"TEXT": {"bytes": 9}, "BIN": {"bytes": 2}}


def test_the_trigger_document_takes_a_wait_response() -> None:
    document = TriggerDocument.model_validate(
        _document(
            "w",
            _command("echo hi"),
            response={"mode": "wait", "body": "output", "failure_body": "{{ exit_code }}"},
        )
    )
    assert document.response is not None and document.response.mode == "wait"


# --- in process, with the app's own engine ------------------------------------------------


@pytest.fixture
def engine_client(engine_app: Flask) -> FlaskClient:
    return engine_app.test_client()


def _create(client: FlaskClient, document: dict[str, Any]) -> None:
    response = client.post("/admin/triggers", json=document, headers=ENGINE_AUTH)
    assert response.status_code == 201, response.get_json()


def _execution(client: FlaskClient, execution_id: str) -> dict[str, Any]:
    found = client.get(f"/admin/executions/{execution_id}", headers=ENGINE_AUTH)
    return found.get_json()  # type: ignore[no-any-return]


def test_wait_answers_with_the_output_and_the_failure_status(engine_client: FlaskClient) -> None:
    wait = {"mode": "wait", "timeout_seconds": 20, "body": "output"}
    _create(engine_client, _document("ok", _command("echo out; echo err >&2"), response=wait))
    failing = {**wait, "failure_body": "failed {{ status }} {{ exit_code }}: {{ output }}"}
    _create(engine_client, _document("ko", _command("echo nope; exit 3"), response=failing))

    ok = engine_client.post("/webhooks/ok", json={})
    assert ok.status_code == 200
    assert ok.content_type == "text/plain; charset=utf-8"
    assert sorted(ok.get_data(as_text=True).splitlines()) == ["err", "out"]

    ko = engine_client.post("/webhooks/ko", json={})
    assert ko.status_code == 500
    assert ko.get_data(as_text=True) == "failed failed 3: nope\n"


def test_wait_without_a_body_answers_json_with_the_result(engine_client: FlaskClient) -> None:
    response = {
        "mode": "wait",
        "timeout_seconds": 20,
        "status": {"failure": 422},
        "headers": {"X-Exit": "{{ exit_code }}"},
    }
    _create(engine_client, _document("j", _command("exit 4"), response=response))
    answered = engine_client.post("/webhooks/j", json={})
    assert answered.status_code == 422
    assert answered.headers["X-Exit"] == "4"
    payload = answered.get_json()
    assert payload["status"] == "accepted"
    assert payload["result"] == {
        "status": "failed",
        "exit_code": 4,
        "error": "exited with status 4",
    }
    assert _execution(engine_client, payload["execution_id"])["status"] == "failed"


def test_a_wait_that_runs_out_answers_202_and_the_execution_goes_on(
    make_app: Any, tmp_path: Any
) -> None:
    app = make_app(
        engine_enabled=True,
        admin_token="engine-test-token-0123456789",
        response_wait_max_seconds=1,
    )
    client = app.test_client()
    gate = tmp_path / "gate"
    script = f"while [ ! -f {gate} ]; do sleep 0.05; done; echo late"
    # timeout_seconds asks for more than RESPONSE_WAIT_MAX_SECONDS allows
    response = {
        "mode": "wait",
        "timeout_seconds": 600,
        "body": "output",
        "headers": {"Content-Type": "text/x-output"},
    }
    _create(client, _document("slow", _command(script), response=response))
    answered = client.post("/webhooks/slow", json={})
    assert answered.status_code == 202
    assert answered.content_type == "application/json"  # not the trigger's headers
    payload = answered.get_json()
    execution_id = payload["execution_id"]
    assert payload["status"] == "accepted"
    assert payload["stream_url"] == f"/admin/executions/{execution_id}/stream"
    assert _execution(client, execution_id)["status"] in ("queued", "running")
    gate.touch()
    wait_for(lambda: _execution(client, execution_id)["status"] == "succeeded")


def test_a_duplicate_answers_with_the_original_result(
    engine_client: FlaskClient, tmp_path: Any
) -> None:
    counter = tmp_path / "runs"
    document = _document(
        "once",
        _command(f"echo run >> {counter}; echo result-$(wc -l < {counter})"),
        response={"mode": "wait", "timeout_seconds": 20, "body": "{{ execution_id }} {{ output }}"},
        dedup={"key": "jmespath:body.id"},
    )
    _create(engine_client, document)
    first = engine_client.post("/webhooks/once", json={"id": "a"})
    again = engine_client.post("/webhooks/once", json={"id": "a"})
    assert first.status_code == again.status_code == 200
    assert first.get_data(as_text=True) == again.get_data(as_text=True)
    execution_id, output = first.get_data(as_text=True).split(" ", 1)
    assert output == "result-1\n"
    assert counter.read_text() == "run\n"  # one execution for both
    deliveries = engine_client.get("/admin/deliveries?trigger=once", headers=ENGINE_AUTH)
    outcomes = sorted(item["outcome"] for item in deliveries.get_json()["items"])
    assert outcomes == ["accepted", "duplicate"]
    assert _execution(engine_client, execution_id)["status"] == "succeeded"


def test_filtered_and_busy_deliveries_answer_as_in_async_mode(engine_client: FlaskClient) -> None:
    response = {
        "mode": "wait",
        "timeout_seconds": 20,
        "body": "output",
        "mismatch": {"status": 200, "body": "not for me"},
    }
    _create(
        engine_client, _document("picky", _command("echo x"), filter="body.go", response=response)
    )
    turned_away = engine_client.post("/webhooks/picky", json={"go": False})
    assert (turned_away.status_code, turned_away.get_data(as_text=True)) == (200, "not for me")

    busy = _document(
        "busy",
        _command("sleep 30"),
        response={"mode": "wait", "timeout_seconds": 0.2, "body": "output"},
        concurrency={"max": 1, "on_busy": "reject"},
    )
    _create(engine_client, busy)
    first = engine_client.post("/webhooks/busy", json={})
    assert first.status_code == 202  # still running when the wait ran out
    refused = engine_client.post("/webhooks/busy", json={})
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "trigger_busy"
    engine_client.post(
        f"/admin/executions/{first.get_json()['execution_id']}/cancel", headers=ENGINE_AUTH
    )


def test_output_is_cut_at_max_output_bytes(engine_client: FlaskClient) -> None:
    script = "for i in $(seq 1 200); do echo line-$i; done"
    response = {"mode": "wait", "timeout_seconds": 20, "body": "output", "max_output_bytes": 20}
    _create(engine_client, _document("chatty", _command(script), response=response))
    answered = engine_client.post("/webhooks/chatty", json={})
    assert answered.status_code == 200
    assert answered.get_data() == b"line-1\nline-2\nline-3"[:20]
    assert answered.headers["Hookrunner-Output-Truncated"] == "true"


def test_output_text_leaves_out_system_lines_and_cuts_on_characters(app: Flask) -> None:
    with app.app_context():
        db: Database = get_db()
    with db.write() as conn:
        conn.execute(
            "INSERT INTO executions (id, trigger, status, attempt, created_at, report,"
            " status_changed_at) VALUES ('e1', 't', 'succeeded', 1, 'x', '{}', 'x')"
        )
    rows = [(1, "t", "system", "started"), (2, "t", "stdout", "é1"), (3, "t", "stderr", "two")]
    execution_logs.append(db, "e1", rows, 10)
    assert execution_logs.output_text(db, "e1", 1000) == ("é1\ntwo\n", False)
    assert execution_logs.output_text(db, "e1", 1) == ("", True)  # half of "é"
    assert execution_logs.output_text(db, "e1", 4) == ("é1\n", True)


def test_files_reach_the_command_and_are_removed_afterwards(
    engine_client: FlaskClient, tmp_path: Any
) -> None:
    seen = tmp_path / "seen"
    script = (
        f'echo "$TEXT" > {seen}; echo "$BIN" >> {seen};'
        ' cat "$TEXT"; od -An -tx1 "$BIN"; stat -c %a "$TEXT"'
    )
    files = {
        "TEXT": {"content": "hello {{ body.name }}\n"},
        "BIN": {"content": "{{ body.blob }}", "base64": True},
    }
    response = {"mode": "wait", "timeout_seconds": 20, "body": "output"}
    _create(engine_client, _document("withfiles", _command(script, files=files), response=response))
    blob = base64.b64encode(b"\x01\x02\xff").decode()
    answered = engine_client.post("/webhooks/withfiles", json={"name": "you", "blob": blob})
    assert answered.status_code == 200, answered.get_data(as_text=True)
    assert answered.get_data(as_text=True).split("\n") == ["hello you", " 01 02 ff", "600", ""]
    text_path, bin_path = seen.read_text().split()
    assert text_path != bin_path
    import os

    assert not os.path.exists(text_path)
    assert not os.path.exists(os.path.dirname(text_path))


def test_a_file_that_is_not_base64_fails_the_execution_not_the_ingest(
    engine_client: FlaskClient,
) -> None:
    files = {"F": {"content": "{{ body.blob }}", "base64": True}}
    response = {"mode": "wait", "timeout_seconds": 20, "body": "{{ error }}"}
    _create(engine_client, _document("badfile", _command("cat $F", files=files), response=response))
    answered = engine_client.post("/webhooks/badfile", json={"blob": "*** not base64 ***"})
    assert answered.status_code == 500
    assert "files F: the content is not valid base64" in answered.get_data(as_text=True)
    executions = engine_client.get("/admin/executions?trigger=badfile", headers=ENGINE_AUTH)
    (execution,) = executions.get_json()["items"]
    assert execution["status"] == "failed"
    logs = engine_client.get(f"/admin/executions/{execution['id']}/logs", headers=ENGINE_AUTH)
    lines = [item["line"] for item in logs.get_json()["items"]]
    assert any("not valid base64" in line for line in lines)


def test_files_are_removed_after_a_timeout(tmp_path: Any) -> None:
    import os
    import threading

    from app.config import Settings
    from app.outbound.breakers import BreakerRegistry

    class Sink:
        full = False

        def line(self, stream: str, text: str) -> None:
            pass

        def lines(self, stream: str, texts: list[str]) -> None:
            pass

        def discard(self, byte_count: int) -> None:
            pass

        def system(self, text: str) -> None:
            pass

    seen = tmp_path / "path"
    action = CommandAction.model_validate(
        _command(f'echo "$F" > {seen}; sleep 30', files={"F": {"content": "x"}}, timeout_seconds=1)
    )
    ctx = RunContext(
        execution_id="e" * 32,
        delivery_id=None,
        trigger="t",
        request_id=None,
        raw_body=b"",
        content_type=None,
        template_context={},
        secrets=[],
        output=Sink(),
        settings=Settings(),
        breakers=BreakerRegistry(),
        cancelled=threading.Event(),
    )
    result = run_command(action, ctx)
    assert result.status == "timed_out"
    path = seen.read_text().strip()
    assert os.path.basename(path) == "F"
    assert not os.path.exists(os.path.dirname(path))


def _readme_block(after: str) -> str:
    from tests.server import PROJECT_ROOT

    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(after, 1)[1].split("```json\n", 1)[1].split("```", 1)[0]


def test_the_readme_examples_are_valid() -> None:
    import json

    waiting = TriggerDocument.model_validate(
        json.loads(_readme_block("#### Synchronous responses"))
    )
    assert waiting.response is not None and waiting.response.mode == "wait"
    files = json.loads("{" + _readme_block("**Files** (`files`)") + "}")["action"]
    assert set(CommandAction.model_validate(files).files) == {"DEPLOY_CONFIG", "DEPLOY_KEY"}


@pytest.fixture
def http_target() -> Iterator[_Server]:
    """A local HTTP server to forward to (the HTTP runner tests' own)."""
    from app.outbound import client as outbound

    target = _Server()
    thread = threading.Thread(target=target.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield target
    target.shutdown()
    thread.join()
    target.server_close()
    outbound.clear_pools()


def test_an_http_action_answers_with_the_forwarded_response_body(
    make_app: Any, http_target: _Server
) -> None:
    target = http_target
    target.reply = Reply(status=200, body=b'{"pong": true}\nsecond line\n')
    app = make_app(
        engine_enabled=True, admin_token="engine-test-token-0123456789", allow_private_targets=True
    )
    client = app.test_client()
    url = f"http://127.0.0.1:{target.server_port}/hook"
    action = {"type": "http", "url": url, "max_response_bytes": 1000}
    _create(client, _document("fwd", action, response=_wait_spec(body="output")))
    answered = client.post("/webhooks/fwd", json={"ping": 1})
    assert answered.status_code == 200
    assert answered.get_data(as_text=True) == '{"pong": true}\nsecond line\n'
    target.reply = Reply(status=503, body=b"down\n")
    failed = client.post("/webhooks/fwd", json={"ping": 2})
    assert (failed.status_code, failed.get_data(as_text=True)) == (500, "down\n")


def _wait_spec(**fields: Any) -> dict[str, Any]:
    return {"mode": "wait", "timeout_seconds": 20, **fields}
