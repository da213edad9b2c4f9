"""SQL for the executions table as a durable queue: claims, leases, cancellation, status.

Every state change is one conditional UPDATE whose ``rowcount`` (or RETURNING)
says whether it happened, so any number of workers - on one host or several
sharing a database - can race for the same rows safely:

* ``claim_batch``: queued -> running, only while still queued and under the
  trigger's concurrency limit (global: serialised per trigger); sets the lease
  (``owner``, ``heartbeat_at``) and a fresh ``claim_token``.
* ``heartbeat``: a process renews the leases of exactly the executions it runs,
  by their claim tokens.
* ``finish``: running -> final, only while still running under the same claim
  token (fencing), so a lease the reaper already took is never overwritten.
* Cancellation of a running execution is a flag (``cancel_requested_at``) that
  the owning worker polls; a queued one is cancelled at once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from app.clock import ms_between, utc_now_iso
from app.errors import Conflict, NotFound
from app.store import deliveries as deliveries_sql
from app.store.base import Connection, Database
from app.store.deliveries import DeliveryRecord
from app.store.executions import FULL_COLUMNS, ExecutionRow


def triggers_with_work(db: Database) -> list[str]:
    """Triggers that have queued executions (from the view ``queue_depth``, one row each)."""
    with db.read() as conn:
        rows = conn.execute("SELECT trigger FROM queue_depth WHERE queued > 0").fetchall()
    return [str(row[0]) for row in rows]


@dataclass(frozen=True)
class Claim:
    """One execution this worker now runs, as the claim left it (no re-read needed).

    ``row.claim_token`` is the token every later write of this attempt presents.
    ``delivery`` is the delivery it runs when the claim brought it along
    (PostgreSQL, in the same round trip); None when it did not - on SQLite, for
    an execution without a delivery, or for one whose delivery committed after
    the claim's snapshot - and the run reads it itself.
    """

    row: ExecutionRow
    delivery: DeliveryRecord | None = None

    @property
    def execution_id(self) -> str:
        return self.row.id

    @property
    def token(self) -> str:
        assert self.row.claim_token is not None
        return self.row.claim_token


_RUNNING = "SELECT COUNT(*) FROM executions WHERE trigger = ? AND status = 'running'"


def _names(columns: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in columns.split(","))


_EXECUTION_NAMES = _names(FULL_COLUMNS)
_DELIVERY_NAMES = _names(deliveries_sql.RECORD_COLUMNS)

# On PostgreSQL the lock, the count and the claim run in one call of the function from
# migration 0013 (one round trip; see the migration for why they are three statements),
# and each claimed execution comes back with its delivery (what the run reads first).
_CLAIM_PG = (
    "SELECT "
    + ", ".join(f"e.{name}" for name in _EXECUTION_NAMES)
    + ", "
    + ", ".join(f"d.{name} AS d_{name}" for name in _DELIVERY_NAMES)
    + " FROM hookrunner_claim(?, ?, ?, ?, ?) AS e"
    # LATERAL ... LIMIT 1: one primary-key lookup per claimed row, whatever the planner
    # guesses of the function's row count (a plain join of it may hash-join the table).
    f" LEFT JOIN LATERAL (SELECT {deliveries_sql.RECORD_COLUMNS} FROM deliveries"
    " WHERE deliveries.id = e.delivery_id LIMIT 1) AS d ON true"
)


def _claim_with_delivery(row: Any) -> Claim:
    """A claim from one row of :data:`_CLAIM_PG` (execution columns, then the delivery's)."""
    values = tuple(row)
    split = len(_EXECUTION_NAMES)
    execution = ExecutionRow.from_row(zip(_EXECUTION_NAMES, values[:split], strict=True))
    delivery = dict(zip(_DELIVERY_NAMES, values[split:], strict=True))
    if delivery["id"] is None:  # no delivery, or not visible to the claim's snapshot
        return Claim(execution)
    return Claim(execution, deliveries_sql.record_from(delivery))


_CLAIM_ONE = (
    "UPDATE executions SET status = 'running', owner = ?, heartbeat_at = ?, started_at = ?,"
    " status_changed_at = ?, claim_token = ? WHERE id = ? AND status = 'queued'"
    f" RETURNING {FULL_COLUMNS}"
)


def claim_batch(
    db: Database, trigger: str, owner: str, max_running: int, limit: int, now: str
) -> list[Claim]:
    """Move up to ``limit`` due executions of ``trigger`` from queued to running.

    ``max_running`` holds across every worker and host: counting the running
    executions and claiming are serialised per trigger - by the write lock on
    SQLite, by a transaction-scoped advisory lock on PostgreSQL (the function
    ``hookrunner_claim`` takes it before it counts, so the count sees every
    claim committed before it). Each claim gets a fresh token (fencing).
    """
    if db.dialect == "postgresql":
        # read() lends an autocommit connection: the call is one statement, so one
        # transaction, and the lock it takes is released when it returns.
        with db.read() as conn:
            rows = conn.execute(_CLAIM_PG, (trigger, now, limit, max_running, owner)).fetchall()
        return [_claim_with_delivery(row) for row in rows]
    with db.write() as conn:
        running = int(conn.execute(_RUNNING, (trigger,)).fetchone()[0])
        room = min(limit, max_running - running)
        if room <= 0:
            return []
        candidates = conn.execute(
            "SELECT id FROM executions WHERE trigger = ? AND status = 'queued'"
            " AND (run_after IS NULL OR run_after <= ?) ORDER BY created_at, id LIMIT ?",
            (trigger, now, room),
        ).fetchall()
        claims = []
        for (execution_id,) in candidates:
            token = uuid.uuid4().hex
            params = (owner, now, now, now, token, execution_id)
            claimed = conn.execute(_CLAIM_ONE, params).fetchone()
            if claimed is not None:
                claims.append(Claim(ExecutionRow.from_row(claimed)))
        return claims


def count_at_most(conn: Connection, trigger: str, statuses: tuple[str, ...], limit: int) -> int:
    """Executions of a trigger with one of ``statuses``, counted no further than ``limit``.

    Admission only needs to know whether a (small) limit is reached, so the
    count stops there.
    """
    marks = ", ".join("?" for _ in statuses)
    row = conn.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM executions"
        f" WHERE trigger = ? AND status IN ({marks}) LIMIT ?) AS active",
        (trigger, *statuses, limit),
    ).fetchone()
    return int(row[0])


# The trigger's queue depth on PostgreSQL, with its entries row locked until the transaction
# ends (migration 0014). The exits are read without a lock: they only grow, so a count from an
# older snapshot overstates the queue and never lets queue_max be exceeded.
QUEUED_FOR_UPDATE = (
    "SELECT entries.total - COALESCE((SELECT exits.total FROM queue_exits AS exits"
    " WHERE exits.trigger = entries.trigger), 0) AS queued"
    " FROM queue_entries AS entries WHERE entries.trigger = ?"
)


def add_counters(conn: Connection, trigger: str) -> None:
    """Give a new trigger its ``queue_entries`` row (zero) inside the caller's transaction.

    Admission locks that row, and the one-statement ingest
    (:mod:`app.store.ingest_records`) only admits when it exists: with it in place
    from the start, even the first burst of deliveries to a new trigger takes
    the one-statement path instead of queueing behind each other in the general
    transaction. Existing rows are left alone.
    """
    conn.execute(
        "INSERT INTO queue_entries (trigger, total) VALUES (?, 0) ON CONFLICT DO NOTHING",
        (trigger,),
    )


def queued_count(conn: Connection, trigger: str, dialect: str = "sqlite") -> int:
    """Queued executions of a trigger: entered minus left (``queue_depth``, kept by SQL triggers).

    On PostgreSQL the trigger's ``queue_entries`` row is locked (``FOR UPDATE``)
    until the caller's transaction ends, so concurrent admissions on any host see
    each other's inserts and ``queue_max`` is never exceeded; the row is created
    first if it does not exist yet. Claims count their exits in another table,
    so they never wait for this lock nor it for them. On SQLite the write lock
    already serialises every writer.
    """
    if dialect != "postgresql":
        row = conn.execute("SELECT queued FROM queue_depth WHERE trigger = ?", (trigger,))
        found = row.fetchone()
        return 0 if found is None else int(found[0])
    locked = f"{QUEUED_FOR_UPDATE} FOR UPDATE"
    found = conn.execute(locked, (trigger,)).fetchone()
    if found is None:  # a trigger from before its counters existed (e.g. a copied store)
        add_counters(conn, trigger)
        found = conn.execute(locked, (trigger,)).fetchone()
    return int(found[0])


def lock_trigger(conn: Connection, dialect: str, trigger: str) -> None:
    """Serialise with claims of ``trigger`` on every host until the transaction ends.

    The same advisory lock :func:`claim_batch` takes on PostgreSQL; SQLite's write
    lock already does this.
    """
    if dialect == "postgresql":
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"claim:{trigger}",))


def supersede(conn: Connection, trigger: str, now: str) -> list[str]:
    """on_busy=replace: cancel queued executions and ask running ones to stop.

    Returns the ids of the running executions asked to stop.
    """
    conn.execute(
        "UPDATE executions SET status = 'cancelled', finished_at = ?, status_changed_at = ?,"
        " error = 'replaced by a newer delivery' WHERE trigger = ? AND status = 'queued'",
        (now, now, trigger),
    )
    rows = conn.execute(
        "UPDATE executions SET cancel_requested_at = ? WHERE trigger = ?"
        " AND status = 'running' AND cancel_requested_at IS NULL RETURNING id",
        (now, trigger),
    ).fetchall()
    return [str(row[0]) for row in rows]


def heartbeat(db: Database, tokens: list[str]) -> None:
    """Renew the leases of the executions this process is running (by claim token)."""
    if not tokens:
        return
    marks = ", ".join("?" for _ in tokens)
    with db.write() as conn:
        conn.execute(
            f"UPDATE executions SET heartbeat_at = ? WHERE status = 'running'"
            f" AND claim_token IN ({marks})",
            (utc_now_iso(), *tokens),
        )


def cancel_requested(db: Database, owner: str) -> list[str]:
    """Running executions of this owner that someone asked to cancel."""
    with db.read() as conn:
        rows = conn.execute(
            "SELECT id FROM executions WHERE owner = ? AND status = 'running'"
            " AND cancel_requested_at IS NOT NULL",
            (owner,),
        ).fetchall()
    return [str(row[0]) for row in rows]


def request_cancel(db: Database, execution_id: str) -> str:
    """Cancel a queued execution now, or flag a running one; returns the status seen.

    Raises NotFound for an unknown id, Conflict when it already finished.
    """
    now = utc_now_iso()
    with db.write() as conn:
        row = conn.execute("SELECT status FROM executions WHERE id = ?", (execution_id,)).fetchone()
        if row is None:
            raise NotFound(f"No execution has the id {execution_id!r}.")
        status = str(row["status"])
        if status == "queued":
            conn.execute(
                "UPDATE executions SET status = 'cancelled', finished_at = ?,"
                " status_changed_at = ?, error = 'cancelled before it started' WHERE id = ?",
                (now, now, execution_id),
            )
        elif status == "running":
            conn.execute(
                "UPDATE executions SET cancel_requested_at = COALESCE(cancel_requested_at, ?)"
                " WHERE id = ?",
                (now, execution_id),
            )
        else:
            raise Conflict(f"The execution already ended with status {status!r}.")
    return status


_FINISH = (
    "UPDATE executions SET status = ?, finished_at = ?, status_changed_at = ?,"
    " exit_code = ?, error = ?, report = ?, duration_ms = ?"
    " WHERE id = ? AND status = 'running'"
    " AND (CAST(? AS TEXT) IS NULL OR claim_token = ?)"
)


def _finish_parameters(
    execution_id: str,
    token: str | None,
    status: str,
    exit_code: int | None,
    error: str | None,
    report: dict[str, Any],
) -> tuple[Any, ...]:
    now = utc_now_iso()
    duration_ms = ms_between(report.get("started_at"), now)
    values = (status, now, now, exit_code, error, json.dumps(report), duration_ms)
    return (*values, execution_id, token, token)


def finish(
    conn: Connection,
    execution_id: str,
    *,
    token: str | None,
    status: str,
    exit_code: int | None,
    error: str | None,
    report: dict[str, Any],
) -> bool:
    """Record the final status of a running execution inside the caller's transaction.

    Matches only while the row is still running under the claim ``token`` (any
    claim when None), so a lease reaped meanwhile is not overwritten. Returns
    whether it did.
    """
    parameters = _finish_parameters(execution_id, token, status, exit_code, error, report)
    return conn.execute(_FINISH, parameters).rowcount == 1


def finish_alone(
    db: Database,
    execution_id: str,
    *,
    token: str,
    status: str,
    exit_code: int | None,
    error: str | None,
    report: dict[str, Any],
) -> bool:
    """:func:`finish` as one statement of its own, for an outcome nothing follows (no retry).

    On PostgreSQL it is one round trip in autocommit (no ``BEGIN``, no
    ``COMMIT``) and never shares a transaction: :func:`supersede` and
    :func:`heartbeat` lock several running rows in scan order, so a transaction
    holding the outcomes of several executions could deadlock with them. On
    SQLite it joins the group commit. Fenced like :func:`finish`; returns
    whether it matched.
    """
    parameters = _finish_parameters(execution_id, token, status, exit_code, error, report)
    return db.write_statement(f"{_FINISH} RETURNING id", parameters, order=None) is not None


def status_of(db: Database, execution_id: str) -> str | None:
    with db.read() as conn:
        row = conn.execute("SELECT status FROM executions WHERE id = ?", (execution_id,)).fetchone()
    return None if row is None else str(row["status"])


def status_changes(
    db: Database, after: tuple[str, str] | None, limit: int = 200
) -> list[dict[str, Any]]:
    """Executions whose status changed after ``(status_changed_at, id)``, oldest first."""
    since, last_id = after or ("", "")
    with db.read() as conn:
        rows = conn.execute(
            "SELECT id, trigger, status, attempt, status_changed_at, exit_code, error"
            " FROM executions WHERE status_changed_at > ?"
            " OR (status_changed_at = ? AND id > ?)"
            " ORDER BY status_changed_at, id LIMIT ?",
            (since, since, last_id, limit),
        ).fetchall()
    return [dict(row) for row in rows]


def latest_status_change(db: Database) -> tuple[str, str] | None:
    with db.read() as conn:
        row = conn.execute(
            "SELECT status_changed_at, id FROM executions"
            " ORDER BY status_changed_at DESC, id DESC LIMIT 1"
        ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


STATUS_FIELDS = (
    "id",
    "trigger",
    "status",
    "attempt",
    "exit_code",
    "error",
    "started_at",
    "finished_at",
)


def status_row(db: Database, execution_id: str) -> dict[str, Any] | None:
    """The status fields of one execution (no report), or None."""
    with db.read() as conn:
        row = conn.execute(
            f"SELECT {', '.join(STATUS_FIELDS)} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
    return None if row is None else dict(row)
