"""The dashboard's pages, through Flask's test client: lists, details and their actions."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_token
from app.store import Database
from tests.conftest import ENGINE_AUTH, PUSH, github_headers, send_push, wait_for
from tests.dashboard import csrf_of, sign_in
from tests.test_dashboard import assert_no_inline_code, ui_write_routes


def _rows(html: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)"', html)


def test_every_write_needs_the_session_csrf_token_and_changes_nothing_without(
    app: Flask, client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    sign_in(client, create_token(db, "ops"))
    routes = ui_write_routes(app)
    assert ("POST", "/ui/triggers/x-name/delete") in routes
    for method, path in routes:
        if path == "/ui/login":
            continue
        response = client.open(path, method=method, data={"csrf_token": "forged"})
        assert response.status_code == 403, (method, path)
        assert "CSRF" in response.text
        response = client.open(path, method=method)
        assert response.status_code == 403, (method, path)
    forged = client.post("/ui/triggers/deploy/delete")
    assert forged.status_code == 403
    assert client.get("/admin/triggers").status_code == 401  # the cookie is not a bearer token
    assert client.get("/ui/triggers/deploy").status_code == 200  # still there
    # The header works as well as the form field (for scripts).
    csrf = csrf_of(client.get("/ui/").text)
    deleted = client.post("/ui/triggers/deploy/delete", headers={"X-CSRF-Token": csrf})
    assert deleted.status_code == 303
    assert client.get("/ui/triggers/deploy").status_code == 404


def test_a_viewer_sees_no_actions_and_every_write_is_403(
    app: Flask, client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    csrf = sign_in(client, create_token(db, "watcher", "viewer"))
    page = client.get("/ui/triggers/deploy")
    assert page.status_code == 200
    for action in ("/delete", "/edit", "/enabled", "/test"):
        assert f"/ui/triggers/deploy{action}" not in page.text
    assert "/ui/triggers/new" not in client.get("/ui/triggers").text
    for method, path in ui_write_routes(app):
        if path in ("/ui/login", "/ui/logout"):
            continue
        response = client.open(path, method=method, data={"csrf_token": csrf})
        assert response.status_code == 403, (method, path)
    assert client.get("/ui/triggers/deploy").status_code == 200
    # A viewer may sign out.
    assert client.post("/ui/logout", data={"csrf_token": csrf}).status_code == 303


def test_no_page_has_inline_code(client: FlaskClient, db: Database, make_trigger: Any) -> None:
    make_trigger()
    accepted = send_push(client, "d-1")
    sign_in(client, create_token(db, "ops"))
    for path in (
        "/ui/",
        "/ui/triggers",
        "/ui/triggers/new",
        "/ui/triggers/deploy",
        "/ui/triggers/deploy/edit",
        "/ui/triggers/deploy/delete",
        "/ui/deliveries",
        f"/ui/deliveries/{accepted['delivery_id']}",
        "/ui/executions",
        f"/ui/executions/{accepted['execution_id']}",
        "/ui/dedup-keys",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_no_inline_code(response.text, path)


def test_executions_list_filters_and_pages_with_the_api_cursors(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    make_trigger("other")
    ids = [send_push(client, f"d-{n}")["execution_id"] for n in range(3)]
    sign_in(client, create_token(db, "ops"))
    first = client.get("/ui/executions?trigger=deploy&limit=2")
    assert _rows(first.text, "data-execution-id") == ids[:0:-1]
    older = re.search(r'<a rel="next" href="([^"]+)"', first.text)
    assert older
    link = older.group(1).replace("&amp;", "&")
    assert "trigger=deploy" in link and "limit=2" in link and "cursor=" in link
    second = client.get(link)
    assert _rows(second.text, "data-execution-id") == ids[:1]
    assert 'rel="next"' not in second.text
    assert _rows(client.get("/ui/executions?status=queued").text, "data-execution-id")
    assert not _rows(client.get("/ui/executions?status=failed").text, "data-execution-id")
    assert not _rows(client.get("/ui/executions?trigger=other").text, "data-execution-id")
    later = client.get("/ui/executions?since=2999-01-01T00:00")
    assert not _rows(later.text, "data-execution-id")
    assert 'data-status-feed="/ui/stream"' in first.text
    bad = client.get("/ui/executions?status=bogus")
    assert bad.status_code == 422
    assert "Invalid filter" in bad.text


def test_execution_detail_shows_output_report_and_links(
    engine_app: Flask, make_trigger: Any
) -> None:
    client = engine_app.test_client()
    response = client.post(
        "/admin/triggers",
        headers=ENGINE_AUTH,
        json={
            "name": "deploy",
            "auth": {"scheme": "github", "secrets": ["It's a Secret to Everybody"]},
            "action": {"type": "command", "argv": ["/bin/sh", "-c", "echo out; echo oops >&2"]},
        },
    )
    assert response.status_code == 201
    accepted = send_push(client, "d-1")
    execution_id = accepted["execution_id"]
    status_url = f"/admin/executions/{execution_id}"
    wait_for(
        lambda: client.get(status_url, headers=ENGINE_AUTH).get_json()["status"] == "succeeded"
    )
    csrf = sign_in(client, "engine-test-token-0123456789")
    page = client.get(f"/ui/executions/{execution_id}").text
    assert '<span class="line stdout" data-seq="1">out' in page
    assert '<span class="line stderr" data-seq="2">oops' in page
    assert 'data-last-seq="2" data-final="true"' in page
    assert 'id="exit-code">0<' in page
    assert "Queued" in page and "Run" in page  # the stage timeline
    assert f"/ui/deliveries/{accepted['delivery_id']}" in page
    assert "/cancel" not in page  # it has ended

    # The stream resumes after Last-Event-ID even when the URL still says ?after=0.
    stream = client.get(
        f"/ui/executions/{execution_id}/stream?after=0", headers={"Last-Event-ID": "1"}
    )
    body = stream.get_data(as_text=True)
    assert stream.mimetype == "text/event-stream"
    assert stream.headers["Cache-Control"] == "no-store"  # command output: never cached
    assert '"line":"oops"' in body and '"line":"out"' not in body
    assert "event: end" in body

    rerun = client.post(f"/ui/executions/{execution_id}/rerun", data={"csrf_token": csrf})
    assert rerun.status_code == 303
    new_id = rerun.headers["Location"].rsplit("/", 1)[1]
    assert new_id != execution_id
    assert f"/ui/executions/{execution_id}" in client.get(rerun.headers["Location"]).text
    wait_for(
        lambda: f"/ui/executions/{new_id}" in client.get(f"/ui/executions/{execution_id}").text
    )


def test_cancel_a_queued_execution(client: FlaskClient, db: Database, make_trigger: Any) -> None:
    make_trigger()
    execution_id = send_push(client, "d-1")["execution_id"]
    csrf = sign_in(client, create_token(db, "ops"))
    page = client.get(f"/ui/executions/{execution_id}").text
    assert f"/ui/executions/{execution_id}/cancel" in page
    assert 'data-final="false"' in page
    response = client.post(f"/ui/executions/{execution_id}/cancel", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert "s-cancelled" in client.get(response.headers["Location"]).text
    again = client.post(f"/ui/executions/{execution_id}/cancel", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert "already ended" in again.text


def test_delivery_detail_redacts_pretty_prints_and_replays(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    accepted = send_push(client, "d-1")
    csrf = sign_in(client, create_token(db, "ops"))
    listing = client.get("/ui/deliveries?outcome=accepted&trigger=deploy").text
    assert _rows(listing, "data-delivery-id") == [accepted["delivery_id"]]
    assert not _rows(client.get("/ui/deliveries?outcome=rejected").text, "data-delivery-id")
    page = client.get(f"/ui/deliveries/{accepted['delivery_id']}").text
    assert "[redacted]" in page
    assert "sha256=" not in page
    assert "&#34;ref&#34;: &#34;refs/heads/main&#34;" in page  # indented JSON
    replayed = client.post(
        f"/ui/deliveries/{accepted['delivery_id']}/replay", data={"csrf_token": csrf}
    )
    assert replayed.status_code == 303
    assert "/ui/executions/" in replayed.headers["Location"]
    assert "Replayed as" in client.get(f"/ui/deliveries/{accepted['delivery_id']}").text


def _create_form(client: FlaskClient, csrf: str, **fields: str) -> Any:
    data = {
        "csrf_token": csrf,
        "name": "build",
        "description": "Builds",
        "enabled": "on",
        "auth_scheme": "github",
        "auth_secret": "It's a Secret to Everybody",
        "argv": "/bin/echo\n{{ body.after }}",
        "extra": "",
    }
    return client.post("/ui/triggers/new", data={**data, **fields})


def test_trigger_form_shows_the_api_errors_next_to_the_fields(
    client: FlaskClient, db: Database
) -> None:
    csrf = sign_in(client, create_token(db, "ops"))
    bad = _create_form(client, csrf, name="Bad Name", auth_secret="", argv="", extra='{"retry": 3}')
    assert bad.status_code == 422
    for field in ("name", "auth_secret", "argv", "extra"):
        assert f'id="{field}-errors"' in bad.text, field
    assert 'value="Bad Name"' in bad.text  # what was typed is kept
    assert "It&#39;s a Secret" not in bad.text
    not_json = _create_form(client, csrf, extra="{nope")
    assert "Not valid JSON" in not_json.text
    assert client.get("/ui/triggers/build").status_code == 404


def test_trigger_create_edit_toggle_dry_run_and_delete(client: FlaskClient, db: Database) -> None:
    csrf = sign_in(client, create_token(db, "ops"))
    created = _create_form(client, csrf, extra='{"dedup": {"key": "none"}}')
    assert created.status_code == 303
    assert created.headers["Location"] == "/ui/triggers/build"
    page = client.get("/ui/triggers/build").text
    assert "&#34;has_secret&#34;: true" in page
    assert "It&#39;s a Secret" not in page and "Secret to Everybody" not in page
    listing = client.get("/ui/triggers").text
    assert 'data-trigger="build"' in listing and "enabled" in listing

    form = client.get("/ui/triggers/build/edit").text
    assert "Secret to Everybody" not in form
    edited = client.post(
        "/ui/triggers/build/edit",
        data={
            "csrf_token": csrf,
            "description": "Builds twice",
            "enabled": "on",
            "auth_scheme": "github",
            "auth_secret": "",
            "argv": "/bin/echo\nchanged",
        },
    )
    assert edited.status_code == 303
    document = client.get("/admin/triggers/build", headers=_bearer(db)).get_json()
    assert document["description"] == "Builds twice"
    assert document["action"]["argv"] == ["/bin/echo", "changed"]
    assert document["dedup"]["key"] == "none"  # fields not in the form are kept
    # The secret was kept: a delivery signed with it is accepted.
    signed = client.post("/webhooks/build", data=PUSH, headers=github_headers(PUSH, "e-1"))
    assert signed.status_code == 202

    dry = client.post(
        "/ui/triggers/build/test",
        data={"csrf_token": csrf, "headers": "X-GitHub-Event: push", "body": '{"after": "x"}'},
    )
    assert dry.status_code == 200
    assert 'id="dry-would">reject' in dry.text
    assert "signature_missing" in dry.text
    bad_headers = client.post(
        "/ui/triggers/build/test", data={"csrf_token": csrf, "headers": "no colon"}
    )
    assert bad_headers.status_code == 422

    off = client.post("/ui/triggers/build/enabled", data={"csrf_token": csrf, "enabled": "0"})
    assert off.status_code == 303
    assert client.get("/admin/triggers/build", headers=_bearer(db)).get_json()["enabled"] is False
    assert 'name="enabled" value="1"' in client.get("/ui/triggers/build").text

    confirm = client.get("/ui/triggers/build/delete")
    assert confirm.status_code == 200 and "Delete trigger build?" in confirm.text
    deleted = client.post("/ui/triggers/build/delete", data={"csrf_token": csrf_of(confirm.text)})
    assert deleted.status_code == 303
    assert client.get("/ui/triggers/build").status_code == 404


def _bearer(db: Database) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(db, 'api')}"}


def test_dedup_keys_list_and_forget(client: FlaskClient, db: Database, make_trigger: Any) -> None:
    make_trigger()
    send_push(client, "d-1")
    csrf = sign_in(client, create_token(db, "ops"))
    page = client.get("/ui/dedup-keys?trigger=deploy").text
    assert "delivery:d-1" in page
    forgot = client.post(
        "/ui/dedup-keys/forget",
        data={"csrf_token": csrf, "trigger": "deploy", "key": "delivery:d-1"},
    )
    assert forgot.status_code == 303
    assert "delivery:d-1" not in client.get("/ui/dedup-keys").text
    assert send_push(client, "d-1")["status"] == "accepted"  # runs again


def test_overview_counts_queue_and_daily_chart(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    from datetime import timedelta

    from app.clock import utc_now
    from app.store import metrics as metrics_sql

    make_trigger()
    send_push(client, "d-1")
    yesterday = (utc_now().date() - timedelta(days=1)).isoformat()
    earlier = (utc_now().date() - timedelta(days=2)).isoformat()
    with db.write() as conn:
        for day, ok, bad in ((earlier, 4, 1), (yesterday, 2, 0)):
            metrics_sql.upsert_day(
                conn,
                day,
                [
                    {"trigger": "deploy", "kind": "execution", "key": "succeeded", "count": ok},
                    {"trigger": "deploy", "kind": "execution", "key": "failed", "count": bad},
                    {"trigger": "deploy", "kind": "delivery", "key": "accepted", "count": ok + bad},
                ],
            )
    sign_in(client, create_token(db, "viewer", "viewer"))
    page = client.get("/ui/").text
    assert '<span class="badge o-accepted">accepted</span> <strong>1</strong>' in page
    assert '<a href="/ui/triggers/deploy">deploy</a></th><td>1</td><td>0</td>' in page  # queued
    assert page.count('<rect class="ok"') == 2
    assert f"{earlier}: 4 succeeded, 1 other, 5 deliveries" in page
    assert re.search(r'<rect class="bad" x="\d+" y="0.0"', page)  # the tallest day fills it


def test_revoking_the_token_ends_its_open_streams(
    client: FlaskClient, db: Database, monkeypatch: Any
) -> None:
    from app.auth import digest
    from app.live import streams
    from app.routes.ui import executions
    from app.store import admin_tokens

    monkeypatch.setattr(streams, "KEEPALIVE_SECONDS", 0.01)
    monkeypatch.setattr(streams, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(executions, "SESSION_RECHECK_SECONDS", 0.0)
    token = create_token(db, "ops")
    sign_in(client, token)
    response = client.get("/ui/stream", buffered=False)
    chunks = response.response  # type: ignore[attr-defined]
    first = next(iter(chunks))
    assert b"retry:" in first
    found = admin_tokens.find_active_token(db, digest(token))
    assert found is not None and admin_tokens.revoke(db, found.id)
    rest = list(chunks)  # ends at the next re-check instead of following forever
    assert len(rest) <= 2
    response.close()


def test_an_http_forward_is_created_from_the_json_field(client: FlaskClient, db: Database) -> None:
    csrf = sign_in(client, create_token(db, "ops"))
    action = (
        '{"action": {"type": "http", "url": "https://example.com/hook", "signing_secret": "s"}}'
    )
    created = _create_form(client, csrf, name="forward", argv="", extra=action)
    assert created.status_code == 303, created.text
    document = client.get("/admin/triggers/forward", headers=_bearer(db)).get_json()
    assert document["action"]["type"] == "http"
    assert document["action"]["url"] == "https://example.com/hook"
    form = client.get("/ui/triggers/forward/edit").text
    assert 'id="f-argv"' not in form  # no command to edit
    edited = client.post(
        "/ui/triggers/forward/edit",
        data={
            "csrf_token": csrf,
            "description": "forwards",
            "enabled": "on",
            "auth_scheme": "github",
        },
    )
    assert edited.status_code == 303
    after = client.get("/admin/triggers/forward", headers=_bearer(db)).get_json()
    assert after["description"] == "forwards"
    assert after["action"]["url"] == "https://example.com/hook"
