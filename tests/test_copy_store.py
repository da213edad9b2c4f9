"""``hookrunner copy-store``: a SQLite installation moves to PostgreSQL with its history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from app.store import copy as copy_module
from app.ui.sessions import COOKIE, COOKIE_PATH
from tests.conftest import GITHUB_SECRET, github_headers, trigger_document, wait_for
from tests.dashboard import sign_in

TOKEN = "copy-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("store_kind", ["postgresql"], indirect=True)
def test_copy_moves_history_tokens_and_dedup_keys(
    make_app: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_app(database_url=source_url, engine_enabled=True, admin_token=TOKEN)
    client = old.test_client()
    created = client.post(
        "/admin/triggers",
        json=trigger_document(action={"type": "command", "argv": ["/bin/echo", "hi"]}),
        headers=AUTH,
    )
    assert created.status_code == 201
    body = json.dumps({"after": "abc"}).encode()
    first = client.post("/webhooks/deploy", data=body, headers=github_headers(body, "d-1"))
    client.post("/webhooks/deploy", data=body, headers=github_headers(body, "d-1"))  # duplicate
    execution_id = first.get_json()["execution_id"]
    wait_for(
        lambda: (
            client.get(f"/admin/executions/{execution_id}", headers=AUTH).get_json()["status"]
            == "succeeded"
        )
    )
    unknown = client.post("/webhooks/nosuch", data=body, headers=github_headers(body, "d-2"))
    assert unknown.status_code == 404  # recorded as a recent refusal
    token = CliRunner().invoke(
        main, ["create-token", "--name", "moved"], env={"DATABASE_URL": source_url}
    )
    assert token.exit_code == 0, token.output
    personal = token.output.strip().splitlines()[-1]
    sign_in(client, personal)  # a dashboard session on the SQLite installation
    session_cookie = client.get_cookie(COOKIE, path=COOKIE_PATH)
    assert session_cookie is not None
    leaving = old.test_client()  # a session signed out before the move stays signed out
    leaving_csrf = sign_in(leaving, personal)
    ended_cookie = leaving.get_cookie(COOKIE, path=COOKIE_PATH)
    assert ended_cookie is not None
    assert leaving.post("/ui/logout", data={"csrf_token": leaving_csrf}).status_code == 303

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(copy_module, "BATCH", 1)  # every row its own batch: keyset paging
    result = CliRunner().invoke(main, ["copy-store", "--from", source_url, "--to", database_url])
    assert result.exit_code == 0, result.output
    assert "copied and verified" in result.output
    assert "execution_logs: 1" in result.output
    assert "deliveries: 2" in result.output

    new = make_app(database_url=database_url)  # the PostgreSQL installation, no ADMIN_TOKEN
    moved = new.test_client()
    mine = {"Authorization": f"Bearer {personal}"}
    assert moved.get("/admin/triggers/deploy", headers=mine).status_code == 200
    logs = moved.get(f"/admin/executions/{execution_id}/logs", headers=mine).get_json()
    assert [item["line"] for item in logs["items"]] == ["hi"]
    refusals = moved.get("/admin/triggers/nosuch/recent-refusals", headers=mine).get_json()
    assert [item["reason"] for item in refusals["items"]] == ["trigger_not_found"]
    # The session-signing key moved too: the operator signed in on SQLite stays signed in.
    moved.set_cookie(COOKIE, session_cookie.value, path=COOKIE_PATH)
    assert moved.get("/ui/triggers").status_code == 200
    ended = new.test_client()
    ended.set_cookie(COOKIE, ended_cookie.value, path=COOKIE_PATH)
    assert ended.get("/ui/triggers").status_code == 303
    again = moved.post("/webhooks/deploy", data=body, headers=github_headers(body, "d-1"))
    assert again.status_code == 200  # the sender's retry is still a duplicate, secret intact
    assert again.get_json()["execution_id"] == execution_id

    refused = CliRunner().invoke(main, ["copy-store", "--from", source_url, "--to", database_url])
    assert refused.exit_code != 0
    assert "not empty" in refused.output
    assert GITHUB_SECRET not in result.output + refused.output
