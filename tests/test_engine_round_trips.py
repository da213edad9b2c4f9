"""The engine's bookkeeping per execution in round trips, on PostgreSQL.

A claim is one call of the function ``hookrunner_claim`` (migration 0013): the
advisory lock, the count of running executions and the claim in one round trip.
An outcome that no retry follows is one statement, without ``BEGIN`` or
``COMMIT``; one that schedules a retry keeps its transaction. Round trips are
counted in libpq's protocol trace (the ``protocol`` fixture).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.clock import utc_now_iso
from app.store import Database
from app.store import execution_queue as queue
from tests.conftest import ProtocolCounter, round_trips, send_push


def _status(db: Database, execution_id: str) -> str:
    with db.read() as conn:
        row = conn.execute("SELECT status FROM executions WHERE id = ?", (execution_id,))
        return str(row.fetchone()[0])


def test_a_claim_and_its_outcome_are_one_round_trip_each(
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
