"""Durable deduplication: storms, restarts, windows, modes, and the keys API."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.clock import utc_now_iso
from app.store import Database, dedup_keys
from tests.conftest import github_headers

PUSH = json.dumps({"ref": "refs/heads/main", "after": "abc123"}).encode()

# The same storm from another process on the same database file, as a second worker would.
_SECOND_PROCESS = textwrap.dedent(
    """
    import json, sys
    from concurrent.futures import ThreadPoolExecutor
    from app import create_app
    from tests.conftest import github_headers
    url, body = sys.argv[1], sys.argv[2].encode()
    app = create_app({"database_url": url, "scheduler_enabled": False, "log_level": "ERROR"})
    def send(_):
        headers = github_headers(body, "storm")
        r = app.test_client().post("/webhooks/deploy", data=body, headers=headers)
        return r.status_code, r.get_json()
    with ThreadPoolExecutor(16) as pool:
        print(json.dumps(list(pool.map(send, range(50)))))
    """
)


def _executions(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(r) for r in conn.execute("SELECT id, status FROM executions").fetchall()]


def _send(client: FlaskClient, delivery: str, body: bytes = PUSH) -> Any:
    return client.post("/webhooks/deploy", data=body, headers=github_headers(body, delivery))


def test_duplicate_storm_across_threads_and_processes_runs_once(
    app: Flask, db: Database, database_url: str, make_trigger: Any
) -> None:
    make_trigger()
    other = subprocess.Popen(
        [sys.executable, "-c", _SECOND_PROCESS, database_url, PUSH.decode()],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )

    def send(_: int) -> tuple[int, dict[str, Any]]:
        response = _send(app.test_client(), "storm")
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(16) as pool:
        local = list(pool.map(send, range(50)))
    remote_out, _ = other.communicate(timeout=120)
    assert other.returncode == 0
    answers = local + [tuple(item) for item in json.loads(remote_out)]

    (execution,) = _executions(db)
    accepted = [body for status, body in answers if status == 202]
    duplicates = [body for status, body in answers if status == 200]
    assert len(accepted) == 1
    assert len(duplicates) == 99
    assert all(body["status"] == "duplicate" for body in duplicates)
    assert {body["execution_id"] for body in accepted + duplicates} == {execution["id"]}


def test_dedup_survives_a_restart(make_app: Any, make_trigger: Any) -> None:
    make_trigger()
    first = _send(make_app().test_client(), "restart-1")
    after_restart = _send(make_app().test_client(), "restart-1")
    assert first.status_code == 202
    assert after_restart.status_code == 200
    assert after_restart.get_json()["execution_id"] == first.get_json()["execution_id"]


def test_expired_key_counts_as_absent(client: FlaskClient, db: Database, make_trigger: Any) -> None:
    make_trigger()
    first = _send(client, "exp-1")
    with db.write() as conn:
        conn.execute("UPDATE webhook_dedup_keys SET expires_at = ?", (utc_now_iso(-1),))
    again = _send(client, "exp-1")
    assert again.status_code == 202
    assert again.get_json()["execution_id"] != first.get_json()["execution_id"]
    assert len(_executions(db)) == 2


def test_sender_id_uses_long_window_and_payload_hash_the_short_one(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    _send(client, "w-1")
    headers = {k: v for k, v in github_headers(b'{"n":1}', "x").items() if k != "X-GitHub-Delivery"}
    client.post("/webhooks/deploy", data=b'{"n":1}', headers=headers)
    keys = client.get("/admin/dedup-keys?trigger=deploy", headers=auth_headers).get_json()["items"]
    long_lived = {
        item["key"].split(":", 1)[0]: item["expires_at"] > utc_now_iso(6 * 86400) for item in keys
    }
    assert long_lived == {"delivery": True, "payload": False}


def test_payload_mode_ignores_key_order(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger(dedup={"key": "payload"})
    first = _send(client, "p-1", b'{"a": 1, "b": 2}')
    reordered = _send(client, "p-2", b'{"b":2,"a":1}')
    assert first.status_code == 202
    assert reordered.status_code == 200


def test_jmespath_mode_keys_on_a_body_field(client: FlaskClient, make_trigger: Any) -> None:
    make_trigger(dedup={"key": "jmespath:body.after"})
    assert _send(client, "j-1", b'{"after": "sha1", "n": 1}').status_code == 202
    assert _send(client, "j-2", b'{"after": "sha1", "n": 2}').status_code == 200
    assert _send(client, "j-3", b'{"after": "sha2", "n": 1}').status_code == 202


def test_none_mode_never_deduplicates(client: FlaskClient, db: Database, make_trigger: Any) -> None:
    make_trigger(dedup={"key": "none"})
    assert _send(client, "n-1").status_code == 202
    assert _send(client, "n-1").status_code == 202
    assert len(_executions(db)) == 2


def test_window_override_applies(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger(dedup={"key": "auto", "window_seconds": 60})
    _send(client, "o-1")
    (key,) = client.get("/admin/dedup-keys", headers=auth_headers).get_json()["items"]
    assert key["expires_at"] < utc_now_iso(61)


def test_deleting_a_key_lets_the_delivery_run_again(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    _send(client, "del-1")
    response = client.delete(
        "/admin/dedup-keys?trigger=deploy&key=delivery:del-1", headers=auth_headers
    )
    assert response.status_code == 204
    assert _send(client, "del-1").status_code == 202
    missing = client.delete("/admin/dedup-keys?trigger=deploy&key=nope", headers=auth_headers)
    assert missing.status_code == 404
    incomplete = client.delete("/admin/dedup-keys?trigger=deploy", headers=auth_headers)
    assert incomplete.status_code == 422


def test_cleanup_job_deletes_only_expired_keys(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    _send(client, "c-1")
    _send(client, "c-2")
    with db.write() as conn:
        conn.execute(
            "UPDATE webhook_dedup_keys SET expires_at = ? WHERE key = 'delivery:c-1'",
            (utc_now_iso(-1),),
        )
    assert dedup_keys.delete_expired(db) == 1
    with db.read() as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM webhook_dedup_keys").fetchall()]
    assert keys == ["delivery:c-2"]


def test_keys_list_paginates(
    client: FlaskClient, auth_headers: dict[str, str], make_trigger: Any
) -> None:
    make_trigger()
    for n in range(5):
        _send(client, f"page-{n}")
    seen: list[str] = []
    cursor = None
    while True:
        url = "/admin/dedup-keys?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth_headers).get_json()
        seen += [item["key"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"delivery:page-{n}" for n in range(5))


def test_payload_hash_treats_integral_floats_as_the_same_number(
    client: FlaskClient, make_trigger: Any
) -> None:
    make_trigger(dedup={"key": "payload"})
    assert _send(client, "num-1", b'{"n": 1, "m": [2, -0]}').status_code == 202
    assert _send(client, "num-2", b'{"n": 1.0, "m": [2e0, -0.0]}').status_code == 200
    assert _send(client, "num-3", b'{"n": 1.5, "m": [2, 0]}').status_code == 202


def test_duplicate_json_keys_are_400_invalid_json(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger(dedup={"key": "payload"})
    response = _send(client, "dup-1", b'{"after": "a", "after": "b"}')
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"
    assert "same key" in response.get_json()["error"]["message"]
    assert _executions(db) == []


def test_duplicate_keys_in_admin_bodies_are_400(
    client: FlaskClient, auth_headers: dict[str, str]
) -> None:
    body = b'{"name": "a", "name": "b"}'
    response = client.post(
        "/admin/triggers",
        data=body,
        headers={**auth_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"
