"""/admin/executions without an engine: details with the processing report, rerun rules."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from app.store import Database
from tests.conftest import PUSH, send_push


def test_execution_detail_has_processing_report(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    accepted = send_push(client, "r-1")
    execution = client.get(
        f"/admin/executions/{accepted['execution_id']}", headers=auth_headers
    ).get_json()
    assert execution["status"] == "queued"
    assert execution["delivery_id"] == accepted["delivery_id"]
    report = execution["report"]
    assert report["auth"] == {"scheme": "github", "secret_index": 0}
    assert report["dedup"]["source"] == "x-github-delivery"
    assert report["body"] == {"kind": "json", "bytes": len(PUSH)}
    listing = client.get("/admin/executions?status=queued&trigger=deploy", headers=auth_headers)
    assert [item["id"] for item in listing.get_json()["items"]] == [accepted["execution_id"]]
    assert "report" not in listing.get_json()["items"][0]


def test_rerun_of_a_disabled_trigger_is_409_like_replay(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any, db: Database
) -> None:
    """A disabled trigger starts no new work, whichever way an operator asks."""
    make_trigger()
    original = send_push(client, "x")
    client.patch("/admin/triggers/deploy", json={"enabled": False}, headers=auth_headers)
    response = client.post(
        f"/admin/executions/{original['execution_id']}/rerun", headers=auth_headers
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "trigger_disabled"
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 1
