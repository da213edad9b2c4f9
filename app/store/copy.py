"""Copy a whole installation from one store to another (e.g. SQLite to PostgreSQL).

``hookrunner copy-store --from URL --to URL`` moves triggers (with their secrets),
admin tokens, deliveries (with the credential values kept for their executions),
executions with their output, live dedup keys, breaker states, the daily
rollups, the recent refusals and the server's own secrets (the dashboard's
session-signing key: signed-in operators stay signed in) with the sessions signed
out since (they stay signed out), so a user who
outgrows SQLite keeps their history and their dedup guarantees. Protocol:

* The source must be at the code's schema version; the target is migrated first
  and must hold no data (a copy never merges into a live installation).
* Tables are copied in an order that satisfies their foreign keys, each in
  batches read by primary key (keyset pagination) and written one transaction
  per batch. The queue counters (``queue_entries``, ``queue_exits``) are not
  copied: the target's triggers count the queued executions as they are inserted.
* At the end the row count of every table is compared; a mismatch fails.
* Stop Hookrunner on the source first: rows written during the copy may be missed.
  A failed copy leaves a partial target: drop it and run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.clock import utc_now_iso
from app.store.base import Database
from app.store.migrations import MigrationError, migrate, pending

BATCH = 2000


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]  # the order rows are read in (unique)
    where: str = ""  # rows copied (SQL with ``?`` for now, or empty for all)


TABLES: tuple[Table, ...] = (
    Table("triggers", ("name",)),
    Table("admin_tokens", ("id",)),
    # replay_of points at an earlier delivery: received_at order keeps the FK satisfied.
    Table("deliveries", ("received_at", "id")),
    Table("executions", ("id",)),
    Table("execution_logs", ("execution_id", "seq")),
    Table("webhook_dedup_keys", ("trigger", "key"), "expires_at > ?"),
    Table("breaker_states", ("destination",)),
    Table("metrics_daily", ("day", "trigger", "kind", "key")),
    Table("ingest_refusals", ("id",)),
    Table("server_secrets", ("name",)),
    Table("ended_sessions", ("session_digest",), "expires_at > ?"),
)


class CopyError(RuntimeError):
    """The copy cannot start or did not arrive whole; the message says why."""


def _count(db: Database, table: Table, now: str) -> int:
    where, params = (f" WHERE {table.where}", (now,)) if table.where else ("", ())
    with db.read() as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table.name}{where}", params).fetchone()[0])


def _check_target_empty(target: Database, now: str) -> None:
    for table in (*TABLES, Table("scheduler_leases", ("name",))):
        if _count(target, Table(table.name, table.key), now):
            raise CopyError(f"the target is not empty: {table.name} has rows; use a new database")


def _copy_table(
    source: Database, target: Database, table: Table, now: str, progress: Callable[[str], None]
) -> int:
    key = ", ".join(table.key)
    after: tuple[object, ...] | None = None
    copied = 0
    while True:
        conditions: list[str] = []
        params: list[object] = []
        if table.where:
            conditions.append(table.where)
            params.append(now)
        if after is not None:
            marks = ", ".join("?" for _ in table.key)
            conditions.append(f"({key}) > ({marks})")
            params.extend(after)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with source.read() as conn:
            rows = conn.execute(
                f"SELECT * FROM {table.name}{where} ORDER BY {key} LIMIT ?", (*params, BATCH)
            ).fetchall()
        if not rows:
            return copied
        columns = list(rows[0].keys())
        insert = (
            f"INSERT INTO {table.name} ({', '.join(columns)})"
            f" VALUES ({', '.join('?' for _ in columns)})"
        )
        values = [tuple(_value(row[c]) for c in columns) for row in rows]
        with target.write() as conn:
            conn.executemany(insert, values)
        copied += len(rows)
        after = tuple(rows[-1][column] for column in table.key)
        progress(f"{table.name}: {copied} rows")


def _value(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value


def copy_store(
    source: Database, target: Database, progress: Callable[[str], None] = lambda _: None
) -> dict[str, int]:
    """Copy everything from ``source`` into the empty ``target``; returns rows per table."""
    try:
        if pending(source):
            raise CopyError("the source has pending migrations: run `hookrunner migrate` on it")
    except MigrationError as exc:
        raise CopyError(str(exc)) from exc
    migrate(target)
    now = utc_now_iso()
    _check_target_empty(target, now)
    counts = {}
    for table in TABLES:
        counts[table.name] = _copy_table(source, target, table, now, progress)
    for table in TABLES:
        expected, found = counts[table.name], _count(target, Table(table.name, table.key), now)
        if found != expected:
            raise CopyError(f"{table.name}: copied {expected} rows but the target has {found}")
    return counts
