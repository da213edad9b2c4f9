"""The queue depth per trigger: entries minus exits, two rows that never share a lock.

Admission (``on_busy: queue``) locks the trigger's ``queue_entries`` row; claims,
cancellations and deletes count in ``queue_exits``. On PostgreSQL an ingest
therefore never waits for a claim of the same trigger that has not committed
yet, nor a claim for an ingest - which the tests below watch for in
``pg_blocking_pids``. On both stores the view ``queue_depth`` stays equal to the
executions actually queued, and migration 0014 carries an existing count over.
On PostgreSQL a claim finds its candidates in the partial index of queued rows
(migration 0015), however many finished executions the trigger has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from app.clock import utc_now_iso
from app.store import Connection, Database, SQLiteDatabase
from app.store import execution_queue as queue
from app.store import executions as executions_sql
from app.store import triggers as triggers_sql
from app.store.migrations import load_migrations, migrate
from app.store.row_ids import new_row_id
from tests.conftest import send_push


def _queued(db: Database, trigger: str = "deploy") -> tuple[int, int]:
    """(the view's depth, the executions really queued) for ``trigger``."""
    with db.read() as conn:
        row = conn.execute("SELECT queued FROM queue_depth WHERE trigger = ?", (trigger,))
        found = row.fetchone()
        real = conn.execute(
            "SELECT COUNT(*) FROM executions WHERE trigger = ? AND status = 'queued'", (trigger,)
        ).fetchone()[0]
    return (0 if found is None else int(found[0])), int(real)


def test_the_depth_follows_ingest_claims_cancellations_and_deletes(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    make_trigger()
    ids = [send_push(client, f"d-{n}")["execution_id"] for n in range(6)]
    assert _queued(db) == (6, 6)
    claimed = queue.claim_batch(
        db, "deploy", "test-owner", max_running=2, limit=2, now=utc_now_iso()
    )
    assert len(claimed) == 2
    assert _queued(db) == (4, 4)
    waiting = [i for i in ids if i not in {c.execution_id for c in claimed}]
    with db.write() as conn:
        conn.execute("UPDATE executions SET status = 'cancelled' WHERE id = ?", (waiting[0],))
        conn.execute("DELETE FROM executions WHERE id = ?", (waiting[1],))
        # Leaving a final status for queued again counts as a new entry.
        conn.execute("UPDATE executions SET status = 'queued' WHERE id = ?", (waiting[0],))
    assert _queued(db) == (3, 3)
    with db.read() as conn:
        assert queue.queued_count(conn, "deploy", db.dialect) == 3
    assert queue.triggers_with_work(db) == ["deploy"]


def test_a_new_trigger_starts_with_its_counters(db: Database, make_trigger: Any) -> None:
    make_trigger()
    with db.read() as conn:
        rows = conn.execute("SELECT trigger, total FROM queue_entries").fetchall()
    assert [tuple(row) for row in rows] == [("deploy", 0)]
    assert _queued(db) == (0, 0)
    assert queue.triggers_with_work(db) == []


def test_a_trigger_without_counters_gets_them_on_its_first_delivery(
    client: FlaskClient, db: Database, make_trigger: Any
) -> None:
    """As a trigger copied from another store before it had executions."""
    make_trigger()
    with db.write() as conn:
        conn.execute("DELETE FROM queue_entries")
    assert send_push(client, "first")["status"] == "accepted"
    assert send_push(client, "second")["status"] == "accepted"
    assert _queued(db) == (2, 2)


def _queue(conn: Connection, trigger: str, count: int) -> list[str]:
    """Queue ``count`` executions of ``trigger`` without deliveries; their ids, oldest first."""
    ids = [new_row_id() for _ in range(count)]
    for execution_id in ids:
        executions_sql.insert_queued(
            conn,
            execution_id=execution_id,
            trigger=trigger,
            delivery_id=None,
            request_id=None,
            created_at=utc_now_iso(),
            report={},
        )
    return ids


def _open(url: str) -> Database:
    if url.startswith("sqlite:///"):
        return SQLiteDatabase(url.removeprefix("sqlite:///"))
    from app.store.postgres.database import PostgresDatabase

    return PostgresDatabase(url, pool_size=2)


def test_migration_0014_carries_the_depth_over(empty_database_url: str) -> None:
    db = _open(empty_database_url)
    try:
        migrations = load_migrations(dialect=db.dialect)
        before = [m for m in migrations if m.version < 14]
        migrate(db, before)
        with db.write() as conn:
            # As version 13 wrote them (no counters yet); "quiet" never had an execution.
            for name in ("deploy", "quiet"):
                conn.execute(
                    "INSERT INTO triggers"
                    " (name, description, enabled, document, created_at, updated_at)"
                    " VALUES (?, '', 1, '{}', ?, ?)",
                    (name, utc_now_iso(), utc_now_iso()),
                )
            running = _queue(conn, "deploy", 4)[-1]
            conn.execute("UPDATE executions SET status = 'running' WHERE id = ?", (running,))
        assert migrate(db) == [m.version for m in migrations if m.version >= 14]
        assert _queued(db) == (3, 3)
        assert _queued(db, "quiet") == (0, 0)
        with db.read() as conn:
            quiet = conn.execute("SELECT total FROM queue_entries WHERE trigger = 'quiet'")
            assert quiet.fetchone()[0] == 0
        with db.write() as conn:  # the new triggers count from there
            conn.execute("UPDATE executions SET status = 'cancelled' WHERE status = 'queued'")
        assert _queued(db) == (0, 0)
    finally:
        db.close()


# --- PostgreSQL: who waits for whom ----------------------------------------------------


@pytest.fixture
def pg_db(db: Database, store_kind: str) -> Database:
    if store_kind != "postgresql":
        pytest.skip("PostgreSQL's own behaviour: row locks between transactions, its planner")
    return db


@pytest.fixture
def holder(pg_db: Database) -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own, outside the app's pool, that holds a transaction open."""
    from app.store.postgres.database import PostgresDatabase

    assert isinstance(pg_db, PostgresDatabase)
    with psycopg.connect(pg_db.url) as conn:
        yield conn


def _blocked_by(holder: psycopg.Connection[Any], work: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``work`` in a thread while ``holder`` keeps its transaction open.

    Returns whether any backend ever waited for a lock ``holder`` holds, and
    what ``work`` returned. The holder's transaction ends (rollback) as soon as
    a wait is seen or ``work`` is done, so a blocked ``work`` finishes too.
    """
    holder_pid = holder.info.backend_pid
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    blocked = False
    with psycopg.connect(holder.info.dsn, autocommit=True) as watcher:
        thread.start()
        while thread.is_alive() and not blocked:
            row = watcher.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                (holder_pid,),
            ).fetchone()
            blocked = row is not None and row[0] > 0
            thread.join(0.01)
    holder.rollback()
    thread.join()
    assert "error" not in outcome, outcome.get("error")
    return blocked, outcome.get("value")


def test_an_ingest_does_not_wait_for_a_claim_in_flight(
    client: FlaskClient, pg_db: Database, holder: psycopg.Connection[Any], make_trigger: Any
) -> None:
    make_trigger()
    first = send_push(client, "first")  # creates the trigger's counters
    send_push(client, "second")
    # A claim that has not committed: the queued -> running update holds the exits row.
    holder.execute(
        "UPDATE executions SET status = 'running' WHERE id = %s", (first["execution_id"],)
    )
    blocked, answer = _blocked_by(holder, lambda: send_push(client, "third"))
    assert answer["status"] == "accepted"
    assert not blocked
    assert _queued(pg_db) == (3, 3)  # the claim rolled back: all three are queued


def test_a_claim_does_not_wait_for_an_admission_in_flight(
    client: FlaskClient, pg_db: Database, holder: psycopg.Connection[Any], make_trigger: Any
) -> None:
    make_trigger()
    send_push(client, "first")
    send_push(client, "second")
    # An ingest between its admission and its commit: the entries row is locked.
    holder.execute("SELECT total FROM queue_entries WHERE trigger = 'deploy' FOR UPDATE").fetchone()

    def claim() -> list[queue.Claim]:
        return queue.claim_batch(pg_db, "deploy", "test-owner", 5, 5, utc_now_iso())

    blocked, claims = _blocked_by(holder, claim)
    assert len(claims) == 2
    assert not blocked


def _plan_indexes(plan: dict[str, Any]) -> set[str]:
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= _plan_indexes(child)
    return found


def test_a_claim_reads_only_queued_rows_however_long_the_history(pg_db: Database) -> None:
    """The candidates of a claim come from the partial index of queued rows (migration 0015).

    The history is written in one burst and never analysed, as during a storm:
    without the index PostgreSQL walks ``executions_created`` from the oldest
    row and filters out every finished execution on each claim.
    """
    triggers_sql.insert(pg_db, "deploy", "", True, "{}")
    with pg_db.write() as conn:
        _queue(conn, "deploy", 3000)
        conn.execute(
            "UPDATE executions SET status = 'succeeded' WHERE id IN"
            " (SELECT id FROM executions ORDER BY created_at LIMIT 2990)"
        )
    # The candidate query of hookrunner_claim (migration 0013), as the function runs it.
    candidates = (
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM executions"
        " WHERE trigger = ? AND status = 'queued' AND (run_after IS NULL OR run_after <= ?)"
        " ORDER BY created_at, id LIMIT 4 FOR UPDATE SKIP LOCKED"
    )
    with pg_db.write() as conn:
        explained = conn.execute(candidates, ("deploy", utc_now_iso())).fetchone()[0]
    plan = explained[0]["Plan"]
    assert _plan_indexes(plan) == {"executions_queued"}
    assert plan["Actual Rows"] == 4
    claims = queue.claim_batch(pg_db, "deploy", "test-owner", 4, 4, utc_now_iso())
    assert len(claims) == 4
