"""The ingest transaction's cost in round trips, and the answers of its one-statement path.

On PostgreSQL an accepted webhook (new key, room in the queue) is written by one
statement in autocommit (:mod:`app.store.ingest_records`); everything else takes
the general transaction. Round trips are counted in libpq's protocol trace (a
``Query`` or a ``Sync`` message from the client each waits for the server).
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from app.store import Database
from tests.conftest import PUSH, ProtocolCounter, github_headers, round_trips, send_push


def _rows(db: Database, sql: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(row) for row in conn.execute(sql).fetchall()]


def test_an_accepted_webhook_is_one_round_trip_on_postgresql(
    client: FlaskClient, db: Database, make_trigger: Any, protocol: ProtocolCounter
) -> None:
    make_trigger()
    protocol()
    # From the trigger's very first delivery: its queue counters exist from its creation.
    answers = [send_push(client, f"d-{n}") for n in range(4)]
    counted = protocol()
    assert [answer["status"] for answer in answers] == ["accepted"] * 4
    # One statement each (no BEGIN or COMMIT), plus reading the trigger into the cache.
    assert round_trips(counted) == 5, counted
    assert counted["Query"] == 0
    executions = _rows(db, "SELECT id, delivery_id, status FROM executions")
    deliveries = _rows(db, "SELECT id, execution_id, outcome, dedup_key FROM deliveries")
    keys = _rows(db, "SELECT key, delivery_id, execution_id FROM webhook_dedup_keys")
    for answer in answers:
        execution = {"id": answer["execution_id"], "delivery_id": answer["delivery_id"]}
        assert {**execution, "status": "queued"} in executions
        delivery = next(row for row in deliveries if row["id"] == answer["delivery_id"])
        assert delivery["outcome"] == "accepted"
        assert delivery["execution_id"] == answer["execution_id"]
        assert {
            "key": delivery["dedup_key"],
            "delivery_id": answer["delivery_id"],
            "execution_id": answer["execution_id"],
        } in keys
    assert _rows(db, "SELECT queued FROM queue_depth WHERE trigger = 'deploy'") == [{"queued": 4}]


def test_a_duplicate_is_answered_with_the_original_ids(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    send_push(client, "warm")
    original = send_push(client, "same")
    again = send_push(client, "same")
    assert again["status"] == "duplicate"
    assert again["execution_id"] == original["execution_id"]
    assert again["delivery_id"] != original["delivery_id"]
    outcomes = _rows(db, "SELECT id, outcome, execution_id FROM deliveries")
    assert {
        "id": again["delivery_id"],
        "outcome": "duplicate",
        "execution_id": original["execution_id"],
    } in outcomes
    assert len(_rows(db, "SELECT id FROM executions")) == 2


def test_a_full_queue_refuses_and_releases_the_key_but_a_duplicate_stays_a_duplicate(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger(concurrency={"max": 1, "on_busy": "queue", "queue_max": 2})
    first = send_push(client, "one")
    assert send_push(client, "two")["status"] == "accepted"
    response = client.post("/webhooks/deploy", data=PUSH, headers=github_headers(PUSH, "three"))
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "queue_full"
    assert _rows(db, "SELECT key FROM webhook_dedup_keys WHERE key LIKE '%three%'") == []
    again = send_push(client, "one")  # the queue is full, yet a retry is still a duplicate
    assert (again["status"], again["execution_id"]) == ("duplicate", first["execution_id"])
    assert _rows(db, "SELECT queued FROM queue_depth WHERE trigger = 'deploy'") == [{"queued": 2}]
