"""The engine's bookkeeping per execution in round trips, on PostgreSQL.

A claim is one call of the function ``hookrunner_claim`` (migration 0013): the
advisory lock, the count of running executions and the claim in one round trip,
which also brings each claimed execution's delivery (the run reads nothing more
before it starts the action).
An outcome that no retry follows is one statement, without ``BEGIN`` or
``COMMIT``; one that schedules a retry keeps its transaction. Round trips are
counted in libpq's protocol trace (the ``protocol`` fixture).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.clock import utc_now_iso
from app.store import Database, deliveries
from app.store import execution_queue as queue
from tests.conftest import ProtocolCounter, round_trips, send_push, wait_for


def _status(db: Database, execution_id: str) -> str:
    with db.read() as conn:
        row = conn.execute("SELECT status FROM executions WHERE id = ?", (execution_id,))
        return str(row.fetchone()[0])


def test_a_claim_with_its_deliveries_and_its_outcome_are_one_round_trip_each(
    app: Flask, client: FlaskClient, db: Database, make_trigger: Any, protocol: ProtocolCounter
) -> None:
    make_trigger(concurrency={"max": 2, "on_busy": "queue"})
    answers = [send_push(client, f"d-{n}") for n in range(3)]
    with app.app_context():
        protocol()
        claims = queue.claim_batch(db, "deploy", "worker-a", 2, limit=4, now=utc_now_iso())
        claimed = protocol()
        assert round_trips(claimed) == 1, claimed
        assert [claim.execution_id for claim in claims] == [a["execution_id"] for a in answers[:2]]
        for claim, answer in zip(claims, answers, strict=False):  # the delivery came along
            assert claim.delivery == deliveries.get(db, answer["delivery_id"])
            assert claim.delivery is not None and claim.delivery.body.startswith(b"{")
        assert queue.claim_batch(db, "deploy", "worker-b", 2, limit=4, now=utc_now_iso()) == []
        protocol()
        assert queue.finish_alone(
            db,
            claims[0].execution_id,
            token=claims[0].token,
            status="succeeded",
            exit_code=0,
            error=None,
            report={"started_at": claims[0].row.started_at},
        )
        finished = protocol()
        assert round_trips(finished) == 1, finished
        assert finished["Query"] == 0  # no BEGIN, no COMMIT
        assert _status(db, claims[0].execution_id) == "succeeded"
        (third,) = queue.claim_batch(db, "deploy", "worker-b", 2, limit=4, now=utc_now_iso())
    assert third.execution_id == answers[2]["execution_id"]
    assert third.token not in {claim.token for claim in claims}


def test_an_outcome_alone_is_fenced_by_the_claim_token(
    app: Flask, client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    answer = send_push(client, "fenced")
    with app.app_context():
        (claim,) = queue.claim_batch(db, "deploy", "worker-a", 1, limit=1, now=utc_now_iso())
        outcome = {"exit_code": 0, "error": None, "report": {}}
        assert not queue.finish_alone(
            db, claim.execution_id, token="not-the-token", status="succeeded", **outcome
        )
        assert _status(db, claim.execution_id) == "running"
        assert queue.finish_alone(
            db, claim.execution_id, token=claim.token, status="failed", **outcome
        )
        assert not queue.finish_alone(  # a late second write matches nothing
            db, claim.execution_id, token=claim.token, status="succeeded", **outcome
        )
    assert _status(db, answer["execution_id"]) == "failed"


def test_outcomes_never_share_a_transaction_on_postgresql(
    app: Flask, client: FlaskClient, db: Database, make_trigger: Any, database_url: str
) -> None:
    """An outcome waiting for a row lock holds up no other outcome.

    Outcomes in one transaction would take several running rows' locks in the
    order they arrived, and ``on_busy: replace`` or the heartbeat take them in
    another: a deadlock. So each outcome is a transaction of its own.
    """
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's one write lock cannot deadlock")
    import psycopg

    make_trigger(concurrency={"max": 2, "on_busy": "queue"})
    for n in range(2):
        send_push(client, f"d-{n}")
    with app.app_context():
        blocked, free = queue.claim_batch(db, "deploy", "worker-a", 2, limit=2, now=utc_now_iso())
    outcome = {"status": "succeeded", "exit_code": 0, "error": None, "report": {}}
    results: dict[str, bool] = {}

    def finish(claim: queue.Claim) -> None:
        results[claim.execution_id] = queue.finish_alone(
            db, claim.execution_id, token=claim.token, **outcome
        )

    threads = [threading.Thread(target=finish, args=(claim,)) for claim in (blocked, free)]
    with psycopg.connect(database_url) as holder:  # another writer holds one row's lock
        holder.execute("SELECT 1 FROM executions WHERE id = %s FOR UPDATE", (blocked.execution_id,))
        try:
            threads[0].start()
            wait_for(lambda: _waiting_for_a_lock(database_url))
            threads[1].start()
            threads[1].join(10)  # done while the other outcome still waits
            assert results == {free.execution_id: True}
            assert _status(db, free.execution_id) == "succeeded"
        finally:
            holder.rollback()
    for thread in threads:
        thread.join(10)
    assert results == {free.execution_id: True, blocked.execution_id: True}


def _waiting_for_a_lock(database_url: str) -> bool:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0] > 0)
