"""``hookrunner import-hooks``: adnanh/webhook hooks files as trigger documents.

The conversion of each documented example (tests/fixtures/peer_hooks/), the
report, the command's output and exit status, and the runtime pieces it maps
onto (``response.rule_error``, ``HOOKS_URL_PREFIX``). The behaviour against the
real peer is in tests/test_hooks_import_parity.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from flask.testing import FlaskClient

from app.auth import create_token
from app.cli import main
from app.config import ConfigError, load_settings
from app.store import get_db
from app.triggers.files import parse_documents
from app.triggers.hooks_import import (
    COMMAND_ERROR_BODY,
    MISMATCH_BODY,
    RULE_ERROR_BODY,
    HooksFileError,
    ImportResult,
    convert_hooks,
    read_hooks,
    trigger_name,
)
from app.triggers.registry import compile_trigger
from app.triggers.schema import TriggerDocument

FIXTURES = Path(__file__).parent / "fixtures" / "peer_hooks"
ENV = {"XXXTEST_SECRET": "from-the-environment"}


def _convert(name: str, *, template: bool = False) -> ImportResult:
    return convert_hooks(read_hooks((FIXTURES / name).read_text(), template=template))


def _by_name(result: ImportResult) -> dict[str, dict[str, Any]]:
    return {document["name"]: document for document in result.documents}


@pytest.mark.parametrize(
    "fixture",
    sorted(p.name for p in FIXTURES.iterdir() if p.name != "unconvertible.json"),
)
def test_every_documented_example_converts_to_valid_triggers(fixture: str) -> None:
    result = _convert(fixture, template=fixture == "template.json")
    assert not result.failed, [r.as_dict() for r in result.failed]
    text = json.dumps({"triggers": result.documents})
    for document in parse_documents(text, ENV, is_json=True):  # what apply reads
        TriggerDocument.model_validate(document)


def test_github_hook_rules_arguments_and_answers() -> None:
    (document,) = _convert("github.json").documents
    assert document["name"] == "redeploy-webhook"
    assert document["auth"] == {"scheme": "none"}
    assert document["dedup"] == {"key": "none"}
    assert document["action"]["argv"] == [
        "/var/scripts/redeploy.sh",
        '{{ body | field("head_commit.id") }}',
        '{{ body | field("pusher.name") }}',
        '{{ body | field("pusher.email") }}',
    ]
    assert document["action"]["cwd"] == "/var/webhook"
    assert document["action"]["stderr"] == "merge"
    assert document["rules"] == {
        "and": [
            {
                "match": {
                    "type": "hmac-sha1",
                    "source": "header:X-Hub-Signature",
                    "secret": "mysecret",
                }
            },
            {"match": {"type": "value", "source": "payload:ref", "value": "refs/heads/master"}},
        ]
    }
    response = document["response"]
    assert response["status"] == {"success": 200}
    assert response["body"] == "none"  # no response-message: an empty body
    assert response["mismatch"] == {"status": 200, "body": MISMATCH_BODY}
    assert response["rule_error"] == {"status": 500, "body": RULE_ERROR_BODY}
    assert document["methods"] == ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    assert document["payload"] == {"xml": True, "multipart": True, "form_payload": "keep"}


def test_relative_command_runs_from_the_working_directory() -> None:
    (document,) = _convert("multipart.json").documents
    assert document["action"]["argv"][0] == "play-command.sh"  # no directory: as given
    hooks = [{"id": "x", "execute-command": "bin/run.sh", "command-working-directory": "/srv/"}]
    (document,) = convert_hooks(hooks).documents
    assert document["action"]["argv"][0] == "/srv/bin/run.sh"


def test_ids_that_are_not_names_are_made_valid_and_reported() -> None:
    result = _convert("gitlab-bitbucket.json")
    assert [d["name"] for d in result.documents] == ["gitlab-redeploy", "bitbucket-redeploy"]
    assert any("'bitbucket-redeploy'" in note for note in result.reports[1].notes)
    assert result.documents[1]["rules"] == {
        "match": {"type": "ip", "cidrs": ["104.192.143.0/24", "34.198.203.127/32"]}
    }
    assert trigger_name("Deploy.Main") == "deploy-main"
    assert trigger_name("__x") == "x"
    assert trigger_name("ok-name_1") == "ok-name_1"
    assert trigger_name("!!!") is None
    assert trigger_name("a" * 80) == "a" * 64


def test_unconvertible_hooks_are_reported_never_dropped() -> None:
    result = _convert("unconvertible.json")
    reports = {report.hook_id: report for report in result.reports}
    assert [d["name"] for d in result.documents] == ["deploy-main-"]
    # the hook whose id already is the name keeps it; the others that map to it are refused
    assert reports["deploy-main-"].converted
    assert "rename one" in reports["Deploy Main!"].errors[0]
    assert "rename one" in reports["deploy-main!"].errors[0]
    assert "execute-command" in reports["no-command"].errors[0]
    assert "payload-md5" in reports["odd-rule"].errors[0]
    duplicate = convert_hooks([{"id": "a", "execute-command": "/x"}] * 2)
    assert [r.converted for r in duplicate.reports] == [True, False]


def test_slack_form_hook_and_methods() -> None:
    (document,) = _convert("slack.yaml").documents
    assert document["methods"] == ["POST"]
    assert document["response"]["body"] == "Executing redeploy script"
    assert document["rules"]["match"] == {
        "type": "value",
        "source": "payload:token",
        "value": "<YOUR-SLACK-TOKEN>",
    }


def test_multipart_json_fields_and_content_type() -> None:
    (document,) = _convert("multipart.json").documents
    assert document["payload"]["json_fields"] == ["payload"]
    hooks = [
        {
            "id": "x",
            "execute-command": "/x",
            "incoming-payload-content-type": "application/json",
            "parse-parameters-as-json": [{"source": "header", "name": "X-Data"}],
        }
    ]
    result = convert_hooks(hooks)
    assert result.documents[0]["payload"]["content_type"] == "application/json"
    assert any("stays text" in note for note in result.reports[0].notes)


def test_output_files_environment_and_headers() -> None:
    result = _convert("files-env.json")
    (document,) = result.documents
    action, response = document["action"], document["response"]
    assert action["env"] == {
        "HOOK_repository_name": '{{ body | field("repository.name") }}',
        "EVENT": '{{ headers | field("x-event") }}',
        "HOOK_target": '{{ query | field("target") }}',
        "FIXED": "literal value",
    }
    assert action["files"] == {
        "ENV_VARIABLE": {"content": '{{ body | field("binary") }}', "base64": True},
        "HOOK_NOTES": {"content": '{{ body | field("notes") }}'},
    }
    assert response["mode"] == "wait"
    assert response["status"] == {"success": 201, "failure": 500}
    assert (response["body"], response["failure_body"]) == ("output", "output")
    assert response["headers"] == {"X-Served-By": "webhook"}
    notes = " ".join(result.reports[0].notes)
    assert "'HOOK_repository.name' is not a valid name" in notes
    assert "webhook leaves the variable unset" in notes


def test_output_without_on_error_answers_the_peers_fixed_text() -> None:
    hooks = [{"id": "x", "execute-command": "/x", "include-command-output-in-response": True}]
    (document,) = convert_hooks(hooks).documents
    assert document["response"]["failure_body"] == COMMAND_ERROR_BODY


def test_flow_syntax_json_soft_failures_and_literals() -> None:
    (document,) = _convert("flow-syntax.json").documents
    assert document["methods"] == ["POST", "PUT"]
    assert document["response"]["mismatch"]["status"] == 400
    assert document["rules"]["and"][0]["soft_signature_failures"] is True
    assert document["rules"]["and"][1] == {
        "not": {"match": {"type": "regex", "source": "payload:ref", "regex": "^refs/tags/"}}
    }
    argv = document["action"]["argv"]
    escapes = ' | replace("&", "\\\\u0026") | replace("<", "\\\\u003c")'
    assert argv[1:3] == ["{{ request.method }}", "{{ raw_body }}"]
    assert argv[3].startswith("{{ body | text" + escapes)  # Go's JSON escapes
    assert argv[4].startswith("{{ query | text" + escapes)
    # ${ stays literal through apply, Jinja syntax through the template
    assert argv[5] == "{% raw %}costs $${5} {{ not a template }}{% endraw %}"
    (resolved,) = parse_documents(json.dumps([document]), {}, is_json=True)
    assert resolved["action"]["argv"][5] == "{% raw %}costs ${5} {{ not a template }}{% endraw %}"


def test_template_getenv_becomes_an_environment_reference() -> None:
    (document,) = _convert("template.json", template=True).documents
    secret = document["rules"]["match"]["secret"]
    assert secret == "${XXXTEST_SECRET}"
    (resolved,) = parse_documents(json.dumps([document]), ENV, is_json=True)
    assert resolved["rules"]["match"]["secret"] == "from-the-environment"
    assert document["response"]["headers"] == {"Access-Control-Allow-Origin": "*"}
    assert "headers" not in document["response"]["mismatch"]  # the peer's refusals have none


def test_template_actions_other_than_getenv_are_refused() -> None:
    with pytest.raises(HooksFileError, match="range"):
        read_hooks('[{"id": "{{ range . }}x{{ end }}"}]', template=True)
    with pytest.raises(HooksFileError, match="list of hooks"):
        read_hooks('{"id": "x"}')
    with pytest.raises(HooksFileError, match="not valid"):
        read_hooks("[{")


def test_a_template_file_read_without_template_says_to_use_it() -> None:
    text = (FIXTURES / "template.json").read_text()
    with pytest.raises(HooksFileError) as refused:
        read_hooks(text)
    assert "import it with --template" in str(refused.value)
    with pytest.raises(HooksFileError) as plain:
        read_hooks("[{")
    assert "--template" not in str(plain.value)


def test_scalr_ip_and_rule_shapes() -> None:
    (document,) = _convert("scalr.json").documents
    assert document["rules"] == {"match": {"type": "scalr", "secret": "Scalr-provided signing key"}}

    def rule_of(rule: Any) -> tuple[Any, list[str]]:
        result = convert_hooks([{"id": "x", "execute-command": "/x", "trigger-rule": rule}])
        report = result.reports[0]
        assert report.converted, report.errors
        return result.documents[0]["rules"], report.notes

    rules, notes = rule_of({"match": {"type": "ip-whitelist", "ip-range": "::1"}})
    assert rules == {"match": {"type": "ip", "cidrs": ["::1/128"]}}
    assert any("/32" in note for note in notes)
    rules, _ = rule_of({"and": []})
    assert rules == {"match": {"type": "value", "source": "string:", "value": ""}}
    rules, _ = rule_of({"or": []})
    assert "not" in rules
    rules, notes = rule_of(
        {
            "match": {
                "type": "payload-hash-sha256",
                "secret": "s",
                "parameter": {"source": "url", "name": "sig"},
            }
        }
    )
    assert rules == {"match": {"type": "hmac-sha256", "source": "query:sig", "secret": "s"}}
    assert any("deprecated" in note for note in notes)
    rules, _ = rule_of(
        {
            "match": {
                "type": "value",
                "value": True,
                "parameter": {"source": "request", "name": "method"},
            }
        }
    )
    assert rules == {"match": {"type": "value", "source": "method", "value": "true"}}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"match": {"type": "regex", "regex": "(", "parameter": {"source": "header", "name": "a"}}},
         "regex"),
        ({"match": {"type": "payload-hmac-sha1", "parameter": {"source": "header", "name": "a"}}},
         "without a secret"),
        ({"match": {"type": "value", "value": "x", "parameter": {"source": "cookie", "name": "a"}}},
         "unknown parameter source"),
        ({"match": {"type": "ip-whitelist", "ip-range": "not-an-ip"}}, "not an IP"),
    ],
)  # fmt: skip
def test_rules_that_cannot_be_converted(rule: Any, message: str) -> None:
    result = convert_hooks([{"id": "x", "execute-command": "/x", "trigger-rule": rule}])
    assert not result.documents
    assert message in result.reports[0].errors[0]


# The command


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return CliRunner()


def test_command_writes_a_file_apply_takes(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["import-hooks", str(FIXTURES / "gitlab-bitbucket.json")])
    assert result.exit_code == 0, result.output
    assert "ok   bitbucket.redeploy -> bitbucket-redeploy" in result.stderr
    assert yaml.safe_load(result.stdout)["triggers"][0]["name"] == "gitlab-redeploy"
    (tmp_path / "triggers.yaml").write_text(result.stdout)
    applied = runner.invoke(main, ["apply", "-f", str(tmp_path / "triggers.yaml")])
    assert applied.exit_code == 0, applied.output
    assert "+ create    bitbucket-redeploy" in applied.stdout


def test_command_template_and_json(runner: CliRunner) -> None:
    path = str(FIXTURES / "template.json")
    result = runner.invoke(main, ["import-hooks", "--template", "--json", path])
    assert result.exit_code == 0, result.output
    triggers = json.loads(result.stdout)["triggers"]
    assert triggers[0]["rules"]["match"]["secret"] == "${XXXTEST_SECRET}"
    assert json.loads(result.stderr)["hooks"][0]["converted"] is True
    yaml_result = runner.invoke(main, ["import-hooks", "--template", path])
    assert "#   XXXTEST_SECRET" in yaml_result.stdout  # the variables to set, in the header


def test_command_exit_status(runner: CliRunner, tmp_path: Path) -> None:
    partial = runner.invoke(main, ["import-hooks", str(FIXTURES / "unconvertible.json")])
    assert partial.exit_code == 1
    assert "FAIL no-command: not converted" in partial.stderr
    assert [t["name"] for t in yaml.safe_load(partial.stdout)["triggers"]] == ["deploy-main-"]
    (tmp_path / "bad.json").write_text("{not yaml: [")
    unreadable = runner.invoke(main, ["import-hooks", str(tmp_path / "bad.json")])
    assert unreadable.exit_code == 2
    assert unreadable.stdout == ""
    missing = runner.invoke(main, ["import-hooks", str(tmp_path / "absent.json")])
    assert missing.exit_code == 2


# The runtime: rule_error and the /hooks/<id> alias


def test_hooks_url_prefix_setting() -> None:
    assert load_settings({}).hooks_url_prefix is None
    assert load_settings({"HOOKS_URL_PREFIX": "/hooks/"}).hooks_url_prefix == "hooks"
    assert load_settings({"HOOKS_URL_PREFIX": "ci/hooks"}).hooks_url_prefix == "ci/hooks"
    for bad in ("webhooks", "admin", "a b", "x/../y?"):
        with pytest.raises(ConfigError, match="HOOKS_URL_PREFIX"):
            load_settings({"HOOKS_URL_PREFIX": bad})


def test_hooks_alias_and_peer_answers(make_app: Any) -> None:
    app = make_app(hooks_url_prefix="hooks")
    client: FlaskClient = app.test_client()
    with app.app_context():
        headers = {"Authorization": f"Bearer {create_token(get_db(), 'tests')}"}
    hooks = read_hooks((FIXTURES / "github.json").read_text())
    hooks[0]["id"] = "Redeploy.Webhook"
    (document,) = convert_hooks(hooks).documents
    created = client.put(f"/admin/triggers/{document['name']}", json=document, headers=headers)
    assert created.status_code in (200, 201), created.get_json()
    body = b'{"ref": "refs/heads/master"}'
    wrong = client.post(
        "/hooks/Redeploy.Webhook", data=body, headers={"X-Hub-Signature": "sha1=00"}
    )
    assert (wrong.status_code, wrong.get_data(as_text=True)) == (500, RULE_ERROR_BODY)
    unsigned = client.post("/hooks/Redeploy.Webhook", data=body)
    assert (unsigned.status_code, unsigned.get_data(as_text=True)) == (200, MISMATCH_BODY)
    # the same trigger at its own address; other ids reach nothing
    assert client.post("/webhooks/redeploy-webhook", data=body).status_code == 200
    assert client.post("/hooks/%21%21", data=body).status_code == 404
    assert client.post("/hooks/", data=body).status_code == 404
    off = make_app().test_client()
    assert off.post("/hooks/Redeploy.Webhook", data=body).status_code == 404


def test_credentials_passed_to_the_command_reach_it_unreported() -> None:
    arguments = [
        {"source": "header", "name": "X-Gitlab-Token"},
        {"source": "url", "name": "token"},
        {"source": "header", "name": "X-GitHub-Event"},
    ]
    hooks = [{"id": "x", "execute-command": "/x", "pass-arguments-to-command": arguments}]
    result = convert_hooks(hooks)
    assert result.reports[0].notes == []  # the command gets the real values (kept apart)
    document = TriggerDocument.model_validate(result.documents[0])
    assert compile_trigger(document, "now").templates_read_request


def test_the_readme_worked_example_is_what_the_command_writes(
    runner: CliRunner, tmp_path: Path
) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### A worked example", 1)[1].split("\n## ", 1)[0]
    hooks = section.split("```json\n", 1)[1].split("```", 1)[0]
    report = section.split("reports\n\n```\n", 1)[1].split("```", 1)[0]
    triggers = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "hooks.json").write_text(hooks)
    result = runner.invoke(main, ["import-hooks", "--template", str(tmp_path / "hooks.json")])
    assert result.exit_code == 0, result.output
    assert result.stdout == triggers
    assert result.stderr == report


def test_yaml_scalars_become_the_strings_webhook_reads() -> None:
    (document,) = _convert("yaml-scalars.yaml").documents
    assert document["action"]["argv"][1:] == [
        "2", "1e6", "1.234567e+06", "1e-05", "false", "10:30", "493", "1000", "0.5", "true",
        "31", "1.1",
    ]  # fmt: skip
    assert document["rules"]["match"]["value"] == "2"


def test_json_indented_with_tabs_is_read() -> None:
    (document,) = _convert("tab-indented.json").documents
    assert document["action"]["argv"] == ["/usr/local/bin/tabbed.sh", "a/b é"]
    with pytest.raises(HooksFileError, match="line 2, column 1"):
        read_hooks("- id: [\n")


def test_a_hook_apply_would_refuse_is_not_converted() -> None:
    headers = [{"name": "Bad Header", "value": "1"}]
    hooks = [{"id": "x", "execute-command": "/x", "response-headers": headers}]
    result = convert_hooks(hooks)
    assert not result.documents
    assert result.reports[0].errors[0].startswith("response.headers.Bad Header")
