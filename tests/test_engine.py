"""The execution engine with real subprocesses: argv, env, output, limits, policies."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.store import get_db
from tests.conftest import ENGINE_AUTH, wait_for

FINAL = {"succeeded", "failed", "timed_out", "cancelled", "interrupted"}


@pytest.fixture
def client(engine_app: Flask) -> FlaskClient:
    return engine_app.test_client()


def _trigger(client: FlaskClient, name: str, action: dict[str, Any], **fields: Any) -> None:
    document = {
        "name": name,
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": action,
    }
    response = client.post("/admin/triggers", json={**document, **fields}, headers=ENGINE_AUTH)
    assert response.status_code == 201, response.get_json()


def _command(*argv: str, **fields: Any) -> dict[str, Any]:
    return {"type": "command", "argv": list(argv), **fields}


def _send(client: FlaskClient, name: str, body: Any = None) -> Any:
    return client.post(f"/webhooks/{name}", json=body or {})


def _execution(client: FlaskClient, execution_id: str) -> dict[str, Any]:
    return client.get(f"/admin/executions/{execution_id}", headers=ENGINE_AUTH).get_json()  # type: ignore[no-any-return]


def _finished(client: FlaskClient, execution_id: str) -> dict[str, Any]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (e := _execution(client, execution_id))["status"] in FINAL and e
    )


def _lines(client: FlaskClient, execution_id: str, stream: str | None = None) -> list[str]:
    items = client.get(f"/admin/executions/{execution_id}/logs", headers=ENGINE_AUTH).get_json()[
        "items"
    ]
    return [item["line"] for item in items if stream is None or item["stream"] == stream]


PRINT_ARGS = "import json, sys; print(json.dumps(sys.argv[1:]))"
PRINT_BOTH_WAYS = (
    "import json, sys; print(json.dumps([a[::-1] for a in sys.argv[1:]])); "
    "print(json.dumps(sys.argv[1:]))"
)


def test_payload_values_reach_the_command_as_single_literal_arguments(client: FlaskClient) -> None:
    _trigger(
        client, "args", _command(sys.executable, "-c", PRINT_ARGS, "{{ body.a }}", "{{ body.b }}")
    )
    accepted = _send(client, "args", {"a": "; rm -rf /", "b": "--help"}).get_json()
    execution = _finished(client, accepted["execution_id"])
    assert execution["status"] == "succeeded"
    assert execution["exit_code"] == 0
    assert json.loads(_lines(client, accepted["execution_id"])[0]) == ["; rm -rf /", "--help"]


def test_child_gets_minimal_environment_ids_and_payload(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKRUNNER_TEST_LEAK", "must-not-leak")
    script = (
        "import json, os, sys; env = dict(os.environ); "
        "print(json.dumps({'env': env, 'stdin': sys.stdin.read(), "
        "'file': open(env['HOOKRUNNER_PAYLOAD_PATH']).read()}))"
    )
    _trigger(
        client,
        "envs",
        _command(
            sys.executable, "-c", script, env={"TARGET": "{{ body.target }}"}, stdin="payload"
        ),
    )
    accepted = client.post(
        "/webhooks/envs", json={"target": "prod"}, headers={"X-Request-ID": "req-env-1"}
    ).get_json()
    _finished(client, accepted["execution_id"])
    seen = json.loads(_lines(client, accepted["execution_id"], "stdout")[0])
    env = seen["env"]
    assert env["TARGET"] == "prod"
    assert env["HOOKRUNNER_EXECUTION_ID"] == accepted["execution_id"]
    assert env["HOOKRUNNER_DELIVERY_ID"] == accepted["delivery_id"]
    assert env["HOOKRUNNER_TRIGGER"] == "envs"
    assert env["HOOKRUNNER_REQUEST_ID"] == "req-env-1"
    assert "HOOKRUNNER_TEST_LEAK" not in env
    assert set(env) - {"TARGET", "PATH", "HOME", "LANG", "LC_CTYPE", "PWD"} <= {
        name for name in env if name.startswith("HOOKRUNNER_")
    }
    assert json.loads(seen["stdin"]) == {"target": "prod"}
    assert json.loads(seen["file"]) == {"target": "prod"}
    assert not os.path.exists(env["HOOKRUNNER_PAYLOAD_PATH"])


def test_stdout_and_stderr_are_interleaved_in_order(client: FlaskClient) -> None:
    # Writes are spaced so that "arrival order" is well defined across the two pipes.
    script = (
        "import sys, time\n"
        "for i in range(3):\n"
        "    print('out', i, flush=True); time.sleep(0.05)\n"
        "    print('err', i, file=sys.stderr, flush=True); time.sleep(0.05)\n"
    )
    _trigger(client, "mix", _command(sys.executable, "-c", script))
    accepted = _send(client, "mix").get_json()
    _finished(client, accepted["execution_id"])
    assert _lines(client, accepted["execution_id"]) == [
        "out 0",
        "err 0",
        "out 1",
        "err 1",
        "out 2",
        "err 2",
    ]


def test_failure_records_exit_code_and_logs_stderr_tail(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    _trigger(client, "fails", _command("/bin/sh", "-c", "echo boom >&2; exit 3"))
    with caplog.at_level("ERROR"):
        accepted = _send(client, "fails").get_json()
        execution = _finished(client, accepted["execution_id"])
    assert execution["status"] == "failed"
    assert execution["exit_code"] == 3
    assert execution["error"] == "exited with status 3"
    record = wait_for(lambda: next((r for r in caplog.records if r.levelname == "ERROR"), None))
    assert record.exit_code == 3  # type: ignore[attr-defined]
    assert record.stderr_tail == ["boom"]  # type: ignore[attr-defined]
    assert record.execution_id == accepted["execution_id"]  # type: ignore[attr-defined]
    assert record.trigger == "fails"  # type: ignore[attr-defined]
    assert record.request_id == accepted["request_id"]  # type: ignore[attr-defined]


def test_missing_program_fails_clearly(client: FlaskClient) -> None:
    _trigger(client, "nope", _command("/no/such/program"))
    execution = _finished(client, _send(client, "nope").get_json()["execution_id"])
    assert execution["status"] == "failed"
    assert "cannot start" in execution["error"]


def test_template_error_fails_the_execution_not_the_ingest(client: FlaskClient) -> None:
    _trigger(client, "tmpl", _command("/bin/echo", "{{ body.missing.deeper }}"))
    response = _send(client, "tmpl", {"other": 1})
    assert response.status_code == 202
    execution = _finished(client, response.get_json()["execution_id"])
    assert execution["status"] == "failed"
    assert "missing" in execution["error"]


def test_timeout_kills_the_whole_process_group(client: FlaskClient, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 300 & echo $! > {pidfile}; echo started; wait"
    _trigger(client, "slow", _command("/bin/sh", "-c", script, timeout_seconds=1))
    execution = _finished(client, _send(client, "slow").get_json()["execution_id"])
    assert execution["status"] == "timed_out"
    grandchild = int(pidfile.read_text())
    wait_for(lambda: not _alive(grandchild))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_cancel_running_then_cancel_again_is_409(client: FlaskClient) -> None:
    _trigger(client, "long", _command("/bin/sh", "-c", "echo started; sleep 300"))
    execution_id = _send(client, "long").get_json()["execution_id"]
    wait_for(lambda: "started" in _lines(client, execution_id))
    response = client.post(f"/admin/executions/{execution_id}/cancel", headers=ENGINE_AUTH)
    assert response.status_code == 202
    assert response.get_json()["status"] == "cancelling"
    assert _finished(client, execution_id)["status"] == "cancelled"
    again = client.post(f"/admin/executions/{execution_id}/cancel", headers=ENGINE_AUTH)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "conflict"


def test_output_is_capped_with_a_notice(client: FlaskClient) -> None:
    script = "for i in range(500): print('x' * 99)"
    _trigger(client, "loud", _command(sys.executable, "-c", script, max_output_bytes=2048))
    execution = _finished(client, _send(client, "loud").get_json()["execution_id"])
    lines = _lines(client, execution["id"])
    assert len([line for line in lines if line.startswith("x")]) == 20
    assert lines[-1].startswith("[output truncated")
    assert execution["report"]["output_truncated"] is True
    assert execution["output_bytes"] == 2000


def test_on_busy_reject_answers_429_and_releases_the_key(client: FlaskClient) -> None:
    _trigger(
        client,
        "solo",
        _command("/bin/sh", "-c", "echo started; sleep 300"),
        concurrency={"max": 1, "on_busy": "reject"},
        dedup={"key": "jmespath:body.n"},
    )
    first = _send(client, "solo", {"n": 1}).get_json()["execution_id"]
    wait_for(lambda: "started" in _lines(client, first))
    busy = _send(client, "solo", {"n": 2})
    assert busy.status_code == 429
    assert busy.get_json()["error"]["code"] == "trigger_busy"
    assert int(busy.headers["Retry-After"]) > 0
    rejected = client.get("/admin/deliveries?outcome=rejected", headers=ENGINE_AUTH).get_json()
    assert len(rejected["items"]) == 1
    client.post(f"/admin/executions/{first}/cancel", headers=ENGINE_AUTH)
    _finished(client, first)
    # The refused delivery did not keep its dedup key: the sender's retry runs.
    assert _send(client, "solo", {"n": 2}).status_code == 202


def test_on_busy_queue_limits_the_queue(client: FlaskClient) -> None:
    _trigger(
        client,
        "queued",
        _command("/bin/sh", "-c", "echo started; sleep 300"),
        concurrency={"max": 1, "on_busy": "queue", "queue_max": 1},
    )
    first = _send(client, "queued").get_json()["execution_id"]
    wait_for(lambda: "started" in _lines(client, first))
    second = _send(client, "queued")
    assert second.status_code == 202
    third = _send(client, "queued")
    assert third.status_code == 429
    assert third.get_json()["error"]["code"] == "queue_full"
    assert _execution(client, second.get_json()["execution_id"])["status"] == "queued"
    client.post(f"/admin/executions/{first}/cancel", headers=ENGINE_AUTH)
    # The queued one starts when the slot frees up.
    wait_for(lambda: _execution(client, second.get_json()["execution_id"])["status"] == "running")
    client.post(
        f"/admin/executions/{second.get_json()['execution_id']}/cancel", headers=ENGINE_AUTH
    )
    _finished(client, second.get_json()["execution_id"])


def test_on_busy_replace_cancels_the_running_one(client: FlaskClient) -> None:
    _trigger(
        client,
        "latest",
        _command("/bin/sh", "-c", "echo started {{ body.n }}; sleep 300"),
        concurrency={"max": 1, "on_busy": "replace"},
    )
    first = _send(client, "latest", {"n": 1}).get_json()["execution_id"]
    wait_for(lambda: "started 1" in _lines(client, first))
    second = _send(client, "latest", {"n": 2}).get_json()["execution_id"]
    assert _finished(client, first)["status"] == "cancelled"
    wait_for(lambda: "started 2" in _lines(client, second))
    client.post(f"/admin/executions/{second}/cancel", headers=ENGINE_AUTH)
    _finished(client, second)


def test_cancel_queued_execution(client: FlaskClient) -> None:
    _trigger(
        client,
        "line",
        _command("/bin/sh", "-c", "echo started; sleep 300"),
        concurrency={"max": 1, "on_busy": "queue"},
    )
    first = _send(client, "line").get_json()["execution_id"]
    wait_for(lambda: "started" in _lines(client, first))
    second = _send(client, "line").get_json()["execution_id"]
    response = client.post(f"/admin/executions/{second}/cancel", headers=ENGINE_AUTH)
    assert response.get_json()["status"] == "cancelled"
    assert _execution(client, second)["status"] == "cancelled"
    client.post(f"/admin/executions/{first}/cancel", headers=ENGINE_AUTH)
    _finished(client, first)


def test_rerun_runs_the_same_delivery_again(client: FlaskClient) -> None:
    _trigger(client, "again", _command("/bin/echo", "{{ body.v }}"))
    original = _send(client, "again", {"v": "one"}).get_json()
    _finished(client, original["execution_id"])
    response = client.post(
        f"/admin/executions/{original['execution_id']}/rerun", headers=ENGINE_AUTH
    )
    assert response.status_code == 202
    rerun = _finished(client, response.get_json()["execution_id"])
    assert rerun["rerun_of"] == original["execution_id"]
    assert rerun["delivery_id"] == original["delivery_id"]
    assert _lines(client, rerun["id"]) == ["one"]


def test_failed_execution_is_retried_with_a_link_to_the_first(client: FlaskClient) -> None:
    _trigger(
        client,
        "flaky",
        _command("/bin/sh", "-c", "exit 1"),
        retry={"max_attempts": 3, "backoff_seconds": 0, "max_backoff_seconds": 0},
    )
    first = _send(client, "flaky").get_json()["execution_id"]
    attempts = wait_for(
        lambda: (
            (
                items := client.get(
                    "/admin/executions?trigger=flaky", headers=ENGINE_AUTH
                ).get_json()["items"]
            )
            and len(items) == 3
            and all(item["status"] == "failed" for item in items)
            and items
        )
    )
    by_attempt = {item["attempt"]: item for item in attempts}
    assert by_attempt[1]["id"] == first
    assert by_attempt[2]["retry_of"] == first
    assert by_attempt[3]["retry_of"] == first


def test_status_feed_reports_every_transition(engine_app: Flask) -> None:
    client = engine_app.test_client()
    _trigger(client, "watched", _command("/bin/echo", "hi"))
    response = client.get("/admin/stream", headers=ENGINE_AUTH, buffered=False)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    chunks = iter(response.response)
    assert next(chunks).startswith(b"retry:")  # the feed now knows where it starts
    execution_id = _send(client, "watched").get_json()["execution_id"]
    seen: list[str] = []
    for chunk in chunks:
        for block in chunk.decode().split("\n\n"):
            data = next((ln[6:] for ln in block.splitlines() if ln.startswith("data: ")), None)
            if data and json.loads(data)["id"] == execution_id:
                seen.append(json.loads(data)["status"])
        if "succeeded" in seen:
            break
    response.close()
    assert seen == ["queued", "running", "succeeded"] or seen == ["running", "succeeded"]


def test_logs_endpoint_pages_by_seq(client: FlaskClient) -> None:
    _trigger(client, "pages", _command(sys.executable, "-c", "for i in range(5): print(i)"))
    execution_id = _send(client, "pages").get_json()["execution_id"]
    _finished(client, execution_id)
    page = client.get(f"/admin/executions/{execution_id}/logs?after=2&limit=2", headers=ENGINE_AUTH)
    body = page.get_json()
    assert [item["line"] for item in body["items"]] == ["2", "3"]
    assert body["last_seq"] == 4
    missing = client.get("/admin/executions/nope/logs", headers=ENGINE_AUTH)
    assert missing.status_code == 404


def test_cwd_is_honoured(client: FlaskClient, tmp_path: Path) -> None:
    _trigger(client, "where", _command("/bin/pwd", cwd=str(tmp_path)))
    execution = _finished(client, _send(client, "where").get_json()["execution_id"])
    assert execution["status"] == "succeeded"
    assert _lines(client, execution["id"]) == [str(tmp_path)]


def test_program_is_found_on_path(client: FlaskClient) -> None:
    _trigger(client, "bare", _command("echo", "found"))
    execution = _finished(client, _send(client, "bare").get_json()["execution_id"])
    assert _lines(client, execution["id"]) == ["found"]


def test_credential_headers_and_query_values_reach_templates_but_no_view(
    client: FlaskClient,
) -> None:
    argv = ("{{ headers['x-gitlab-token'] }}", "{{ query.token }}", "{{ headers['x-team'] }}")
    _trigger(client, "creds", _command(sys.executable, "-c", PRINT_BOTH_WAYS, *argv))
    _trigger(client, "plain", _command(sys.executable, "-c", PRINT_ARGS, "{{ body.a }}"))
    sent = {"X-Gitlab-Token": "glpat-secret-1", "X-Team": "ops"}
    accepted = client.post("/webhooks/creds?token=tok-2", json={}, headers=sent).get_json()
    execution = _finished(client, accepted["execution_id"])
    assert execution["status"] == "succeeded"
    # The command got the real values (printed reversed), and printing one as it is
    # stores it masked, as every other view shows it.
    assert _lines(client, execution["id"], "stdout") == [
        json.dumps(["1-terces-taplg", "2-kot", "spo"]),
        json.dumps(["[redacted]", "[redacted]", "ops"]),
    ]
    # The stored delivery, the execution's report and the replay keep showing them redacted.
    delivery_id = accepted["delivery_id"]
    delivery = client.get(f"/admin/deliveries/{delivery_id}", headers=ENGINE_AUTH).get_json()
    shown = json.dumps([delivery, execution])
    assert "glpat-secret-1" not in shown and "tok-2" not in shown
    assert execution["report"]["action"]["argv"][3:] == ["[redacted]", "[redacted]", "ops"]
    replayed = client.post(f"/admin/deliveries/{delivery_id}/replay", headers=ENGINE_AUTH)
    again = _finished(client, replayed.get_json()["execution_id"])
    reversed_values = json.dumps(["1-terces-taplg", "2-kot", "spo"])
    assert _lines(client, again["id"], "stdout")[0] == reversed_values
    # A trigger whose templates never read headers or the query keeps none of them.
    plain = client.post("/webhooks/plain", json={"a": 1}, headers=sent).get_json()
    _finished(client, plain["execution_id"])
    with client.application.app_context(), get_db().read() as conn:
        kept = dict(conn.execute("SELECT id, credentials FROM deliveries").fetchall())
    assert json.loads(kept[delivery_id])["headers"]["x-gitlab-token"] == "glpat-secret-1"
    assert kept[plain["delivery_id"]] is None


def test_a_trigger_secret_printed_by_the_command_is_stored_masked(client: FlaskClient) -> None:
    script = "import sys; print('key=' + sys.argv[1]); print('oops', sys.argv[1], file=sys.stderr)"
    _trigger(
        client,
        "leaky",
        _command(sys.executable, "-c", script, "{{ body.key }}"),
        auth={"scheme": "token", "secrets": ["s3cret-token-value"]},
    )
    accepted = client.post(
        "/webhooks/leaky",
        json={"key": "s3cret-token-value"},
        headers={"X-Webhook-Token": "s3cret-token-value"},
    )
    assert accepted.status_code == 202, accepted.get_json()
    execution = _finished(client, accepted.get_json()["execution_id"])
    assert sorted(_lines(client, execution["id"])) == ["key=[redacted]", "oops [redacted]"]


def test_executions_run_on_the_pool_started_with_the_engine(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's runners take turns: per command only its output reader is started.

    (Threads here, greenlets under gevent; a quiet command starts no output flusher.)
    """
    app = make_app(
        engine_enabled=True, admin_token="engine-test-token-0123456789", execution_pool_size=2
    )
    client = app.test_client()
    runners = {t.name for t in threading.enumerate() if t.name.startswith("hookrunner-runner-")}
    assert len(runners) >= 2
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    _trigger(client, "pooled", _command(sys.executable, "-c", "pass"))
    ids = [_send(client, "pooled").get_json()["execution_id"] for _ in range(6)]
    assert all(_finished(client, execution_id)["status"] == "succeeded" for execution_id in ids)
    readers = [name for name in started if name.startswith("hookrunner-output-")]
    # Without gevent a waiting thread per command notices its exit (spawn.py).
    waiters = [name for name in started if name.startswith("hookrunner-wait-")]
    others = [name for name in started if name not in readers + waiters]
    assert len(readers) == len(waiters) == 6
    assert len(others) == len(set(others)), others  # one-off background threads only
    assert not any(name.startswith("Thread-") for name in others), others


def test_a_cancel_nobody_announced_is_applied_on_a_busy_engine(engine_app: Flask) -> None:
    """Cancels are looked for when announced, and at least once a second however often
    the engine wakes for other work: a lost announcement only delays one."""
    from app.wiring import components

    client = engine_app.test_client()
    _trigger(client, "slow", _command("/bin/sleep", "30"))
    execution_id = _send(client, "slow").get_json()["execution_id"]
    wait_for(lambda: _execution(client, execution_id)["status"] == "running")
    with engine_app.app_context(), get_db().write() as conn:  # flagged, never announced
        conn.execute(
            "UPDATE executions SET cancel_requested_at = ? WHERE id = ?",
            ("2026-01-01T00:00:00.000000Z", execution_id),
        )
    engine = components(engine_app).engine
    assert engine is not None

    def woken_until_cancelled() -> bool:
        engine.wake()  # as a stream of queued work elsewhere would
        return _execution(client, execution_id)["status"] == "cancelled"

    assert wait_for(woken_until_cancelled, interval=0.05)
