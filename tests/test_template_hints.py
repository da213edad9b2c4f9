"""Header names with dashes: the template form, and hints when the filter form is used."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.conftest import github_headers, trigger_document

TEMPLATE_FORM = 'headers["x-github-event"]'


def test_filter_form_in_a_template_is_refused_with_the_template_form(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    document = trigger_document(
        action={"type": "command", "argv": ["/bin/echo", '{{ headers."x-github-event" }}']}
    )
    response = client.post("/admin/triggers", json=document, headers=auth_headers)
    assert response.status_code == 422
    [detail] = response.get_json()["error"]["details"]
    assert TEMPLATE_FORM in detail["message"]


def test_dashed_name_in_a_template_fails_with_a_hint(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(action={"type": "command", "argv": ["/bin/echo", "{{ headers.x-github-event }}"]})
    body = b'{"after": "x"}'
    sample = {"headers": github_headers(body, "t-1"), "body": body.decode()}
    report = client.post("/admin/triggers/deploy/test", json=sample, headers=auth_headers)
    assert TEMPLATE_FORM in report.get_json()["action"]["error"]


def test_template_form_reaches_the_header(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(
        filter="headers.\"x-github-event\" == 'push'",
        action={"type": "command", "argv": ["/bin/echo", '{{ headers["x-github-event"] }}']},
    )
    body = b'{"after": "x"}'
    sample = {"headers": github_headers(body, "t-2"), "body": body.decode()}
    report = client.post("/admin/triggers/deploy/test", json=sample, headers=auth_headers)
    assert report.get_json()["filter"]["matched"] is True
    assert report.get_json()["action"]["argv"] == ["/bin/echo", "push"]
