"""/admin/deliveries: lists, details, replay."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from app.store import Database
from tests.conftest import send_push


def test_lists_have_no_bodies_and_filter_by_outcome(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    send_push(client, "a")
    send_push(client, "a")
    items = client.get("/admin/deliveries", headers=auth_headers).get_json()["items"]
    assert [item["outcome"] for item in items] == ["duplicate", "accepted"]
    assert all("body" not in item and "headers" not in item for item in items)
    only = client.get("/admin/deliveries?outcome=duplicate", headers=auth_headers).get_json()
    assert [item["outcome"] for item in only["items"]] == ["duplicate"]
    bad = client.get("/admin/deliveries?outcome=lost", headers=auth_headers)
    assert bad.status_code == 422


def test_time_range_and_cursor_pagination(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    ids = [send_push(client, f"p-{n}")["delivery_id"] for n in range(5)]
    seen: list[str] = []
    url = "/admin/deliveries?limit=2"
    while url:
        page = client.get(url, headers=auth_headers).get_json()
        seen += [item["id"] for item in page["items"]]
        url = (
            f"/admin/deliveries?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
        )
    assert seen == list(reversed(ids))
    future = client.get("/admin/deliveries?since=2999-01-01T00:00:00Z", headers=auth_headers)
    assert future.get_json()["items"] == []
    past = client.get("/admin/deliveries?until=2000-01-01T00:00:00Z", headers=auth_headers)
    assert past.get_json()["items"] == []


def test_invalid_cursor_is_400(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    for cursor in ("garbage!", "e30"):  # not base64 JSON / not a pair
        response = client.get(f"/admin/executions?cursor={cursor}", headers=auth_headers)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_unknown_ids_are_404(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    for path in ("/admin/deliveries/nope", "/admin/executions/nope"):
        response = client.get(path, headers=auth_headers)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.post("/admin/deliveries/nope/replay", headers=auth_headers).status_code == 404


def test_replay_creates_a_new_execution_bypassing_dedup(
    client: FlaskClient, db: Database, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    original = send_push(client, "replay-me")
    response = client.post(
        f"/admin/deliveries/{original['delivery_id']}/replay", headers=auth_headers
    )
    assert response.status_code == 202
    replay = response.get_json()
    assert replay["status"] == "accepted"
    assert replay["replay_of"] == original["delivery_id"]
    assert replay["execution_id"] != original["execution_id"]
    stored = client.get(f"/admin/deliveries/{replay['delivery_id']}", headers=auth_headers)
    assert stored.get_json()["replay_of"] == original["delivery_id"]
    # A sender retry is still a duplicate of the original.
    assert send_push(client, "replay-me")["execution_id"] == original["execution_id"]


def test_replay_of_a_disabled_trigger_is_409(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    original = send_push(client, "x")
    client.patch("/admin/triggers/deploy", json={"enabled": False}, headers=auth_headers)
    response = client.post(
        f"/admin/deliveries/{original['delivery_id']}/replay", headers=auth_headers
    )
    assert response.status_code == 409
