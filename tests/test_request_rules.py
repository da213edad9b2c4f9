"""Request rules, methods and body options at ingest, over real HTTP (both stores)."""

from __future__ import annotations

import hmac
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.ingest.payloads import parse_multipart, parse_xml
from app.ingest.rules import RuleInput, evaluate
from app.triggers.fields import as_text, lookup

SECRET = "mysecret"


def _signed(body: bytes, algorithm: str = "sha1") -> str:
    return f"{algorithm}=" + hmac.new(SECRET.encode(), body, algorithm).hexdigest()


def _request(**fields: Any) -> RuleInput:
    values: dict[str, Any] = {
        "method": "POST",
        "remote_addr": "10.0.0.5",
        "headers": {},
        "query": {},
        "body": {},
        "raw": b"",
    }
    values.update(fields)
    return RuleInput(**values)


def test_lookup_reads_paths_like_the_peer() -> None:
    body = {"a.b": 1, "commits": [{"id": "x"}], "o": {"k": True}}
    assert lookup(body, "a.b") == 1
    assert lookup(body, "commits.0.id") == "x"
    assert as_text(lookup(body, "commits.1.id")) == ""
    assert as_text(lookup(body, "o")) == '{"k":true}'


def test_hmac_rule_accepts_prefixed_and_listed_signatures_and_refuses_wrong_ones() -> None:
    rules = {"match": {"type": "hmac-sha1", "source": "header:X-Hub-Signature", "secret": SECRET}}
    raw = b'{"a": 1}'
    good = _request(headers={"x-hub-signature": _signed(raw)}, raw=raw)
    listed = _request(headers={"x-hub-signature": f"sha1=00, {_signed(raw)}"}, raw=raw)
    bad = _request(headers={"x-hub-signature": "sha1=00"}, raw=raw)
    assert evaluate(rules, good) == "matched"
    assert evaluate(rules, listed) == "matched"
    assert evaluate(rules, bad) == "signature_invalid"
    assert evaluate(rules, _request(raw=raw)) == "mismatch"  # no header: not satisfied


def test_soft_signature_failures_only_fail_their_branch() -> None:
    signature = {"match": {"type": "hmac-sha256", "source": "header:x-sig", "secret": SECRET}}
    ip = {"match": {"type": "ip", "cidrs": ["10.0.0.0/24"]}}
    request = _request(headers={"x-sig": "nope"})
    assert evaluate({"or": [signature, ip]}, request) == "signature_invalid"
    assert evaluate({"or": [signature, ip], "soft_signature_failures": True}, request) == "matched"


def test_value_regex_not_and_ip_rules() -> None:
    rules = {
        "and": [
            {"match": {"type": "value", "source": "payload:ref", "value": "refs/heads/main"}},
            {"match": {"type": "regex", "source": "query:env", "regex": "^prod"}},
            {"not": {"match": {"type": "ip", "cidrs": ["192.168.0.0/16"]}}},
        ]
    }
    ok = _request(body={"ref": "refs/heads/main"}, query={"env": "production"})
    assert evaluate(rules, ok) == "matched"
    assert evaluate(rules, _request(body={"ref": "x"}, query={"env": "production"})) == "mismatch"


def test_xml_and_multipart_bodies_become_objects() -> None:
    xml = b'<app><users><user id="1" name="Jeff"/><user id="2" name="Sally"/></users></app>'
    assert lookup(parse_xml(xml), "app.users.user.0.-name") == "Jeff"
    assert parse_xml(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>') is None
    body = (
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nhello\r\n'
        b'--B\r\nContent-Disposition: form-data; name="p"; filename="p.json"\r\n'
        b'Content-Type: application/json\r\n\r\n{"x": 1}\r\n--B--\r\n'
    )
    assert parse_multipart(body, "multipart/form-data; boundary=B", []) == {
        "a": "hello",
        "p": {"x": 1},
    }


def _trigger(name: str, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": name,
        "auth": {"scheme": "none"},
        "dedup": {"key": "none"},
        "action": {"type": "command", "argv": ["/bin/true"]},
    }
    document.update(fields)
    return document


def _create(client: FlaskClient, auth: dict[str, str], document: dict[str, Any]) -> Any:
    response = client.post("/admin/triggers", json=document, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_rules_mismatch_is_recorded_as_ignored_and_signature_failure_is_401(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    rules = {
        "and": [
            {"match": {"type": "hmac-sha1", "source": "header:X-Hub-Signature", "secret": SECRET}},
            {"match": {"type": "value", "source": "payload:ref", "value": "refs/heads/main"}},
        ]
    }
    view = _create(client, auth_headers, _trigger("ruled", rules=rules))
    assert view["rules"]["and"][0]["match"]["secret"] == "[redacted]"
    body = b'{"ref": "refs/heads/dev"}'
    headers = {"Content-Type": "application/json", "X-Hub-Signature": _signed(body)}
    ignored = client.post("/webhooks/ruled", data=body, headers=headers)
    assert ignored.status_code == 202
    assert ignored.get_json()["reason"] == "rules_mismatch"
    wrong = client.post(
        "/webhooks/ruled", data=body, headers={**headers, "X-Hub-Signature": "sha1=00"}
    )
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["code"] == "signature_invalid"
    good = b'{"ref": "refs/heads/main"}'
    accepted = client.post(
        "/webhooks/ruled",
        data=good,
        headers={"Content-Type": "application/json", "X-Hub-Signature": _signed(good)},
    )
    assert accepted.status_code == 202
    assert accepted.get_json()["status"] == "accepted"
    deliveries = client.get("/admin/deliveries", headers=auth_headers).get_json()["items"]
    assert sorted(d["outcome"] for d in deliveries) == ["accepted", "ignored"]
    # A patch that sends the masked rules back keeps the stored secret.
    patched = client.patch(
        "/admin/triggers/ruled", json={"rules": view["rules"]}, headers=auth_headers
    )
    assert patched.status_code == 200
    again = client.post(
        "/webhooks/ruled",
        data=good,
        headers={"Content-Type": "application/json", "X-Hub-Signature": _signed(good)},
    )
    assert again.get_json()["status"] == "accepted"


def test_methods_other_than_post_where_the_trigger_allows_them(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    _create(client, auth_headers, _trigger("pinged", methods=["get", "POST"]))
    _create(client, auth_headers, _trigger("postonly"))
    assert client.get("/webhooks/pinged?host=a").status_code == 202
    refused = client.get("/webhooks/postonly?host=a")
    assert refused.status_code == 405
    assert refused.get_json()["error"]["code"] == "method_not_allowed"
    assert refused.headers["Allow"] == "POST, OPTIONS"


def test_options_names_the_triggers_methods_and_runs_nothing(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    _create(client, auth_headers, _trigger("asked", methods=["GET", "POST"]))
    answered = client.open("/webhooks/asked", method="OPTIONS")
    assert answered.status_code == 204
    assert answered.headers["Allow"] == "GET, POST, OPTIONS"
    assert answered.data == b""
    listed = client.get("/admin/deliveries?trigger=asked", headers=auth_headers).get_json()
    assert listed["items"] == []
    unknown = client.open("/webhooks/nobody", method="OPTIONS")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "trigger_not_found"


def test_options_is_a_webhook_on_a_trigger_that_lists_it(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    _create(client, auth_headers, _trigger("anymethod", methods=["POST", "OPTIONS"]))
    accepted = client.open("/webhooks/anymethod?host=a", method="OPTIONS")
    assert accepted.status_code == 202
    assert accepted.get_json()["status"] == "accepted"


def test_static_response_answers_with_templated_text_after_recording(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    response = {
        "status": 200,
        "headers": {"X-Run": "{{ execution_id }}"},
        "body": "Deploying {{ body | field('text') }}",
        "mismatch": {"status": 200, "body": "Hook rules were not satisfied."},
    }
    rules = {"match": {"type": "value", "source": "payload:token", "value": "t0k"}}
    _create(client, auth_headers, _trigger("slash", rules=rules, response=response))
    answered = client.post("/webhooks/slash", data={"token": "t0k", "text": "api"})
    assert answered.status_code == 200
    assert answered.get_data(as_text=True) == "Deploying api"
    assert answered.content_type == "text/plain; charset=utf-8"
    runs = client.get("/admin/executions", headers=auth_headers).get_json()["items"]
    assert answered.headers["X-Run"] == runs[0]["id"]
    turned_away = client.post("/webhooks/slash", data={"token": "wrong", "text": "api"})
    assert turned_away.status_code == 200
    assert turned_away.get_data(as_text=True) == "Hook rules were not satisfied."


def test_output_body_is_refused_without_wait_mode(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    refused = client.post(
        "/admin/triggers",
        json=_trigger("waiting", response={"body": "output"}),
        headers=auth_headers,
    )
    assert refused.status_code == 422
    assert "wait" in str(refused.get_json()["error"])


def test_get_webhook_runs_the_command_with_query_method_and_address(
    make_app: Any, tmp_path: Any
) -> None:
    from tests.conftest import create_token, wait_for

    app = make_app(engine_enabled=True)
    client = app.test_client()
    with app.app_context():
        from app.store import get_db

        auth = {"Authorization": f"Bearer {create_token(get_db(), 'tests')}"}
    out = tmp_path / "argv.txt"
    script = 'printf "%s\\n" "$@" > "$0"'
    argv = [
        "/bin/sh",
        "-c",
        script,
        str(out),
        "{{ query | field('host') }}",
        "{{ request.method }}",
        "{{ request.remote_addr }}",
        "{{ body | field('missing') }}",
    ]
    _create(
        client,
        auth,
        _trigger("ping", methods=["GET"], action={"type": "command", "argv": argv}),
    )
    answered = client.get("/webhooks/ping?host=web-1", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert answered.status_code == 202
    wait_for(lambda: out.exists() and out.read_text().count("\n") == 4)
    assert out.read_text().split("\n") == ["web-1", "GET", "10.1.2.3", "", ""]


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: x=1", "tab\tok\x00", "caf\u00e9"])
@pytest.mark.parametrize("where", ["response", "mismatch"])
def test_a_response_header_that_no_header_can_carry_is_422(
    client: FlaskClient, auth_headers: dict[str, str], value: str, where: str
) -> None:
    headers = {"X-Echo": value}
    response = {"headers": headers} if where == "response" else {"mismatch": {"headers": headers}}
    refused = client.post(
        "/admin/triggers", json=_trigger("badheader", response=response), headers=auth_headers
    )
    assert refused.status_code == 422
    assert "printable ASCII" in json.dumps(refused.get_json()["error"]["details"])


@pytest.mark.parametrize("echoed", ["a\r\nSet-Cookie: pwn=1", "nul\u0000", "\u00e9\u4e2d"])
def test_a_header_rendered_from_the_payload_that_no_header_can_carry_is_sent_empty(
    client: FlaskClient, auth_headers: dict[str, str], echoed: str
) -> None:
    response = {"status": 200, "headers": {"X-Echo": "{{ body.x }}", "X-Kept": "yes"}}
    _create(client, auth_headers, _trigger("echo", response=response))
    answered = client.post("/webhooks/echo?host=a", json={"x": echoed})
    assert answered.status_code == 200
    assert answered.headers["X-Echo"] == ""
    assert "Set-Cookie" not in answered.headers
    assert answered.headers["X-Kept"] == "yes"
    listed = client.get("/admin/deliveries?trigger=echo", headers=auth_headers).get_json()
    assert len(listed["items"]) == 1


def test_regex_rules_run_in_linear_time_on_hostile_payloads(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    """``(a+)+$`` would backtrack for ages on this body in Python's ``re``; RE2 does not."""
    import threading

    rules = {"match": {"type": "regex", "source": "payload:x", "regex": "^(a+)+$"}}
    _create(client, auth_headers, _trigger("redos", rules=rules))
    answers: list[Any] = []
    sender = threading.Thread(
        target=lambda: answers.append(client.post("/webhooks/redos", json={"x": "a" * 60 + "!"}))
    )
    sender.start()
    sender.join(60)  # a bound on waiting; backtracking would need years
    assert answers, "the regex rule is still running"
    assert answers[0].status_code == 202
    assert answers[0].get_json()["status"] == "ignored"
    matched = client.post("/webhooks/redos", json={"x": "a" * 60})
    assert matched.get_json()["status"] == "accepted"


@pytest.mark.parametrize("pattern", ["(?=x)", "(a)\\1", "(?<!x)y", "["])
def test_a_regex_only_backtracking_can_run_is_422(
    client: FlaskClient,
    auth_headers: dict[str, str],
    pattern: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    rules = {"match": {"type": "regex", "source": "payload:x", "regex": pattern}}
    refused = client.post(
        "/admin/triggers", json=_trigger("badregex", rules=rules), headers=auth_headers
    )
    assert refused.status_code == 422
    assert "invalid regex (RE2 syntax)" in json.dumps(refused.get_json()["error"]["details"])
    assert "re2.cc" not in capfd.readouterr().err  # nothing printed past the JSON logs
