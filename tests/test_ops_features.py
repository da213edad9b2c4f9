"""Triggers as code (apply/export/PUT), IP allowlists, recent refusals, the daily-work CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from app import create_app
from app.cli import main
from app.config import ConfigError, load_settings
from app.ingest.client_address import client_address, parse_networks
from tests.conftest import GITHUB_SECRET, PUSH, github_headers, trigger_document, wait_for

TRIGGERS_YAML = """
triggers:
  - name: deploy
    auth: {scheme: github, secrets: ["${DEPLOY_SECRET}"]}
    action: {type: command, argv: ["/bin/echo", "{{ body.after }}", "$${LITERAL}"]}
  - name: build
    auth: {scheme: none}
    action: {type: command, argv: ["/bin/true"]}
"""


@pytest.fixture
def runner(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DEPLOY_SECRET", GITHUB_SECRET)
    return CliRunner()


def _write(tmp_path: Path, text: str, name: str = "triggers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_apply_creates_then_is_idempotent_and_prunes(runner: CliRunner, tmp_path: Path) -> None:
    path = _write(tmp_path, TRIGGERS_YAML)
    dry = runner.invoke(main, ["apply", "-f", str(path), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["created"] == ["deploy", "build"]
    assert json.loads(runner.invoke(main, ["triggers", "list", "--json"]).stdout)["items"] == []
    first = runner.invoke(main, ["apply", "-f", str(path), "--json"])
    assert json.loads(first.stdout)["created"] == ["deploy", "build"]
    again = json.loads(runner.invoke(main, ["apply", "-f", str(path), "--json"]).stdout)
    assert again["unchanged"] == ["deploy", "build"] and again["created"] == []
    shown = json.loads(runner.invoke(main, ["triggers", "show", "deploy", "--json"]).stdout)
    assert shown["action"]["argv"][2] == "${LITERAL}"
    assert GITHUB_SECRET not in json.dumps(shown)
    only_build = _write(tmp_path, TRIGGERS_YAML.split("  - name: build")[0], "one.yaml")
    changed = runner.invoke(main, ["apply", "-f", str(only_build), "--prune", "--dry-run"])
    assert "- delete    build" in changed.stdout
    pruned = json.loads(
        runner.invoke(main, ["apply", "-f", str(only_build), "--prune", "--json"]).stdout
    )
    assert pruned["deleted"] == ["build"]


def test_apply_with_a_missing_variable_or_invalid_document_changes_nothing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEPLOY_SECRET")
    path = _write(tmp_path, TRIGGERS_YAML + "  - name: bad\n    auth: {scheme: nope}\n")
    result = runner.invoke(main, ["apply", "-f", str(path)])
    assert result.exit_code == 1
    assert "DEPLOY_SECRET is not set" in result.output
    assert json.loads(runner.invoke(main, ["triggers", "list", "--json"]).stdout)["items"] == []


def test_export_round_trips_through_apply(runner: CliRunner, tmp_path: Path) -> None:
    runner.invoke(main, ["apply", "-f", str(_write(tmp_path, TRIGGERS_YAML))])
    exported = runner.invoke(main, ["export", "-o", str(tmp_path / "out.yaml")])
    assert exported.exit_code == 0, exported.output
    text = (tmp_path / "out.yaml").read_text()
    assert GITHUB_SECRET not in text and "${DEPLOY_SECRET}" in text
    again = json.loads(
        runner.invoke(main, ["apply", "-f", str(tmp_path / "out.yaml"), "--json"]).stdout
    )
    assert sorted(again["unchanged"]) == ["build", "deploy"]


def test_put_creates_replaces_and_keeps_secrets(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    created = client.put("/admin/triggers/deploy", json=trigger_document(), headers=auth_headers)
    assert created.status_code == 201
    document = trigger_document(description="new")
    del document["auth"]["secrets"]
    replaced = client.put("/admin/triggers/deploy", json=document, headers=auth_headers)
    assert replaced.status_code == 200, replaced.get_json()
    assert replaced.get_json()["auth"]["has_secret"] is True
    wrong = client.put("/admin/triggers/deploy", json={"name": "x"}, headers=auth_headers)
    assert wrong.status_code == 422
    accepted = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "p-1"))
    assert accepted.status_code == 202


def test_client_address_believes_only_trusted_proxies() -> None:
    trusted = parse_networks(("10.0.0.0/8",))
    xff = {"x-forwarded-for": "6.6.6.6, 203.0.113.7, 10.0.0.2"}
    assert str(client_address("10.0.0.1", xff, trusted)) == "203.0.113.7"
    assert str(client_address("198.51.100.1", xff, trusted)) == "198.51.100.1"
    assert str(client_address("10.0.0.1", xff, ())) == "10.0.0.1"
    forwarded = {"forwarded": 'for="[2001:db8::1]:4711", for=10.0.0.3'}
    assert str(client_address("10.0.0.1", forwarded, trusted)) == "2001:db8::1"


def test_trusted_proxies_setting_is_validated() -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings(env={"TRUSTED_PROXIES": "10.0.0.0/8,nope"})


def test_allow_ips_refuses_other_sources_and_records_the_refusal(
    make_app: Any, auth_headers: dict[str, str]
) -> None:
    app = make_app(trusted_proxies=("127.0.0.1/32",))
    client = app.test_client()
    doc = trigger_document()
    doc["auth"]["allow_ips"] = ["192.30.252.0/22", "2001:db8::/32"]
    from app.auth import create_token
    from app.wiring import components

    token = {"Authorization": f"Bearer {create_token(components(app).store, 't')}"}
    assert client.post("/admin/triggers", json=doc, headers=token).status_code == 201
    refused = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "a"))
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "ip_not_allowed"
    allowed = client.post(
        "/webhooks/deploy",
        data=PUSH,
        headers={**github_headers(PUSH, "b"), "X-Forwarded-For": "192.30.252.9"},
    )
    assert allowed.status_code == 202
    bad_sig = client.post(
        "/webhooks/deploy",
        data=PUSH,
        headers={**github_headers(PUSH, "c", secret="x"), "X-Forwarded-For": "192.30.252.9"},
    )
    assert bad_sig.status_code == 401
    client.post("/webhooks/typo", data=PUSH)
    refusals = client.get("/admin/triggers/deploy/recent-refusals", headers=token).get_json()
    reasons = [item["reason"] for item in refusals["items"]]
    assert reasons == ["signature_invalid", "ip_not_allowed"]
    assert refusals["items"][0]["source_address"] == "192.30.252.9"
    assert "signature" not in json.dumps(refusals["items"][0]).replace("signature_invalid", "")
    typo = client.get("/admin/triggers/typo/recent-refusals", headers=token).get_json()
    assert typo["items"][0]["reason"] == "trigger_not_found"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'hookrunner_ingest_refusals_total{reason="ip_not_allowed",trigger="deploy"}' in metrics


def test_triggers_file_is_applied_at_start_up(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_SECRET", GITHUB_SECRET)
    path = _write(tmp_path, TRIGGERS_YAML)
    overrides = {"database_url": database_url, "scheduler_enabled": False, "engine_enabled": False}
    app = create_app({**overrides, "triggers_file": str(path), "admin_token": "t" * 40})
    listed = app.test_client().get(
        "/admin/triggers", headers={"Authorization": "Bearer " + "t" * 40}
    )
    assert [t["name"] for t in listed.get_json()["items"]] == ["build", "deploy"]
    monkeypatch.delenv("DEPLOY_SECRET")
    with pytest.raises(ConfigError, match="DEPLOY_SECRET"):
        create_app({**overrides, "triggers_file": str(path)})


def test_cli_test_replay_executions_and_tail(
    runner: CliRunner, tmp_path: Path, make_app: Any, auth_headers: dict[str, str]
) -> None:
    runner.invoke(main, ["apply", "-f", str(_write(tmp_path, TRIGGERS_YAML))])
    body = tmp_path / "push.json"
    body.write_bytes(PUSH)
    headers = [f"-H{k}: {v}" for k, v in github_headers(PUSH, "t-1").items()]
    dry = runner.invoke(main, ["test", "deploy", "--body", f"@{body}", *headers, "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["action"]["argv"][1] == "abc123"
    unsigned = runner.invoke(main, ["test", "deploy", "--body", f"@{body}"])
    assert unsigned.exit_code == 2
    app = make_app(engine_enabled=True)
    client = app.test_client()
    accepted = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "t-2"))
    ids = accepted.get_json()
    tail = runner.invoke(main, ["tail", ids["execution_id"]])
    assert tail.exit_code == 0, tail.output
    assert "abc123 ${LITERAL}" in tail.stdout
    listed = json.loads(runner.invoke(main, ["executions", "list", "--json"]).stdout)
    assert listed["items"][0]["status"] == "succeeded"
    replayed = runner.invoke(main, ["replay", ids["delivery_id"], "--json"])
    assert replayed.exit_code == 0, replayed.output
    again = json.loads(replayed.stdout)
    assert again["replay_of"] == ids["delivery_id"]
    assert again["request_id"]  # a replay from the CLI gets its own, as a request does
    shown = client.get(f"/admin/executions/{again['execution_id']}", headers=auth_headers)
    assert shown.status_code == 200, shown.get_json()
    shown = shown.get_json()
    assert shown["request_id"] == again["request_id"]
    failing = runner.invoke(main, ["tail", again["execution_id"]])
    assert failing.exit_code == 0
    missing = runner.invoke(main, ["tail", "nope"])
    assert missing.exit_code == 1 and "not_found" in missing.output


def test_cli_writes_reach_a_running_server_without_its_polls(
    runner: CliRunner, tmp_path: Path, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay from the CLI wakes the server's engine, an apply refreshes its triggers.

    The engine's sweep and the trigger cache's revalidation are pushed out of
    the test's reach, so only the command's notification can make either happen.
    """
    from app.execution import engine as engine_module
    from app.store import executions
    from app.triggers import registry as registry_module
    from app.wiring import components, trigger_registry

    runner.invoke(main, ["apply", "-f", str(_write(tmp_path, TRIGGERS_YAML))])
    monkeypatch.setattr(engine_module, "SWEEP_SECONDS", 3600.0)
    monkeypatch.setattr(registry_module, "REVALIDATE_SECONDS", 3600.0)
    app = make_app(engine_enabled=True)
    client = app.test_client()
    with app.app_context():
        assert trigger_registry().get("deploy").document.action.argv[0] == "/bin/echo"
    accepted = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "w-1"))
    assert accepted.status_code == 202

    def status(execution_id: str) -> str:
        with app.app_context():
            return executions.get(components().store, execution_id).status

    wait_for(lambda: status(accepted.get_json()["execution_id"]) == "succeeded")
    replayed = runner.invoke(main, ["replay", accepted.get_json()["delivery_id"], "--json"])
    assert replayed.exit_code == 0, replayed.output
    wait_for(lambda: status(json.loads(replayed.stdout)["execution_id"]) == "succeeded")

    changed = TRIGGERS_YAML.replace('["/bin/echo", ', '["/bin/printf", ')
    applied = runner.invoke(main, ["apply", "-f", str(_write(tmp_path, changed, "new.yaml"))])
    assert applied.exit_code == 0, applied.output

    def argv0() -> str:
        with app.app_context():
            return trigger_registry().get("deploy").document.action.argv[0]

    assert wait_for(lambda: argv0() == "/bin/printf")
