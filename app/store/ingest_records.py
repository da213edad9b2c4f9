"""An accepted webhook in one statement: dedup claim, delivery and queued execution.

The general ingest transaction (:meth:`app.ingest.dispatch.ExecutionService.dispatch_webhook_event`)
is one statement at a time: claim the key, check admission, insert the delivery,
insert the execution, commit. On PostgreSQL every statement is a network round
trip, and admission's row lock on ``queue_entries`` - which every ingest of the
trigger takes - is held across all of them and the commit.

:func:`record_accepted` writes the common outcome - a new key, a queue with room -
as one statement of data-modifying CTEs, handed to
:meth:`~app.store.base.Database.write_statement`: on PostgreSQL one round trip
in autocommit, or - when other ingests of the process arrive meanwhile - one
pipelined transaction shared with them (``app/store/postgres/group_commit.py``),
so the trigger's row lock is taken and the WAL flushed once per group. The
statement writes everything or nothing:

* ``admitted``: the trigger's ``queue_entries`` row, locked ``FOR UPDATE`` as
  in :func:`app.store.execution_queue.queued_count`, and only while entries
  minus exits is below ``queue_max`` (a waiter re-reads the row once the holder
  commits, and exits read from an older snapshot only overstate the queue, so
  ``queue_max`` is never exceeded across hosts). Every trigger gets its row
  when it is created (:func:`app.store.execution_queue.add_counters`); one
  without a row (copied from another store before it had executions) is not
  admitted here, and its first ingest through the general transaction adds it.
* ``claimed``: the dedup claim of :func:`app.store.dedup_keys.claim`, only when
  admitted (no key: the admission alone).
* the delivery and the execution, only when claimed (the foreign key of the
  execution is checked at the end of the statement, after both inserts).

False means nothing was written: the caller runs the general transaction, which
answers a duplicate (with the original ids), a full queue and every other
policy as before. Other stores return False at once (SQLite shares commits
between concurrent ingests instead: group commit).
"""

from __future__ import annotations

from app.store import dedup_keys
from app.store import deliveries as deliveries_sql
from app.store import executions as executions_sql
from app.store.base import Database
from app.store.execution_queue import QUEUED_FOR_UPDATE


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


def _statement(claims_key: bool) -> str:
    delivery_marks = _marks(len(deliveries_sql.COLUMNS.split(",")))
    execution_marks = _marks(len(executions_sql.QUEUED_COLUMNS.split(",")))
    source = "claimed" if claims_key else "admitted"
    claim = (
        f" claimed AS (INSERT INTO webhook_dedup_keys ({dedup_keys.COLUMNS})"
        f" SELECT ?, ?, ?, ?, ?, ? FROM admitted{dedup_keys.ON_CONFLICT} RETURNING 1),"
        if claims_key
        else ""
    )
    return (
        f"WITH admitted AS MATERIALIZED (SELECT 1 FROM ({QUEUED_FOR_UPDATE} FOR UPDATE) AS depth"
        " WHERE depth.queued < ?),"
        f"{claim}"
        f" delivery AS (INSERT INTO deliveries ({deliveries_sql.COLUMNS})"
        f" SELECT {delivery_marks} FROM {source}),"
        f" execution AS (INSERT INTO executions ({executions_sql.QUEUED_COLUMNS})"
        f" SELECT {execution_marks} FROM {source})"
        f" SELECT COUNT(*) FROM {source}"
    )


_WITH_KEY = _statement(claims_key=True)
_WITHOUT_KEY = _statement(claims_key=False)


def record_accepted(
    db: Database,
    *,
    delivery: deliveries_sql.DeliveryRecord,
    execution_id: str,
    created_at: str,
    expires_at: str,
    queue_max: int,
) -> bool:
    """Record an accepted webhook in one statement if the store can; whether it did.

    ``delivery`` is the accepted delivery: its ``dedup_key`` (if any) is claimed
    from ``created_at`` until ``expires_at``, and ``execution_id`` is queued
    (with an empty report, like the general transaction). On False nothing was
    written.
    """
    if db.dialect != "postgresql":
        return False
    admission = (delivery.trigger, queue_max)
    values = deliveries_sql.values(delivery) + executions_sql.queued_values(
        execution_id=execution_id,
        trigger=delivery.trigger,
        delivery_id=delivery.id,
        request_id=delivery.request_id,
        created_at=created_at,
        report={},
    )
    if delivery.dedup_key is None:
        sql, parameters = _WITHOUT_KEY, admission + values
    else:
        claim = (
            delivery.trigger,
            delivery.dedup_key,
            delivery.id,
            execution_id,
            created_at,
            expires_at,
        )
        sql, parameters = _WITH_KEY, admission + claim + values
    row = db.write_statement(sql, parameters, order=delivery.trigger)
    return bool(row[0])
