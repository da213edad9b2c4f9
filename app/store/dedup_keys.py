"""SQL for ``webhook_dedup_keys``: the atomic claim that makes retries harmless.

A key is claimed by one upsert that inserts the row, or overwrites it only when
the stored row has expired - so an expired key counts as absent, and two
concurrent claims of a live key cannot both succeed (the write transaction and
the primary key decide). The same statement runs on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import utc_now_iso
from app.store.base import Connection, Database
from app.store.paging import select_page

COLUMNS = "trigger, key, delivery_id, execution_id, created_at, expires_at"
# What a claim does when the key exists: take it over only if it has expired.
ON_CONFLICT = (
    " ON CONFLICT (trigger, key) DO UPDATE SET"
    " delivery_id = excluded.delivery_id, execution_id = excluded.execution_id,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at"
    " WHERE webhook_dedup_keys.expires_at <= excluded.created_at"
)
_CLAIM = f"INSERT INTO webhook_dedup_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?){ON_CONFLICT}"


def claim(
    conn: Connection,
    *,
    trigger: str,
    key: str,
    delivery_id: str,
    execution_id: str,
    now: str,
    expires_at: str,
) -> str | None:
    """Claim ``key`` inside the caller's write transaction.

    Returns None when this call claimed it, otherwise the ``execution_id`` of
    the live claim it duplicates.
    """
    cursor = conn.execute(_CLAIM, (trigger, key, delivery_id, execution_id, now, expires_at))
    if cursor.rowcount == 1:
        return None
    row = conn.execute(
        "SELECT execution_id FROM webhook_dedup_keys WHERE trigger = ? AND key = ?",
        (trigger, key),
    ).fetchone()
    return str(row["execution_id"])


def delete_expired(db: Database) -> int:
    """Delete every expired key (the scheduled cleanup job); returns the count."""
    with db.write() as conn:
        cursor = conn.execute(
            "DELETE FROM webhook_dedup_keys WHERE expires_at <= ?", (utc_now_iso(),)
        )
    return cursor.rowcount


@dataclass(frozen=True)
class DedupKeyRow:
    """A live claim: ``key`` of ``trigger`` belongs to that delivery and execution."""

    trigger: str
    key: str
    delivery_id: str
    execution_id: str
    created_at: str
    expires_at: str


def list_for_trigger(
    db: Database, trigger: str | None, *, after: tuple[str, str] | None, limit: int
) -> list[DedupKeyRow]:
    """Live keys, newest first; ``after`` is the (created_at, key) of the last row seen."""
    rows = select_page(
        db,
        table="webhook_dedup_keys",
        columns="trigger, key, delivery_id, execution_id, created_at, expires_at",
        time_column="created_at",
        id_column="key",
        filters=[("expires_at > ?", utc_now_iso()), ("trigger = ?", trigger)],
        after=after,
        limit=limit,
    )
    return [DedupKeyRow(**row) for row in rows]


def delete(db: Database, trigger: str, key: str) -> bool:
    """Forget one key so the next identical delivery runs again."""
    with db.write() as conn:
        cursor = conn.execute(
            "DELETE FROM webhook_dedup_keys WHERE trigger = ? AND key = ?", (trigger, key)
        )
    return cursor.rowcount == 1


def find_live(db: Database, trigger: str, key: str) -> str | None:
    """The execution id holding a live claim on ``key``, if any (read only)."""
    with db.read() as conn:
        row = conn.execute(
            "SELECT execution_id FROM webhook_dedup_keys"
            " WHERE trigger = ? AND key = ? AND expires_at > ?",
            (trigger, key, utc_now_iso()),
        ).fetchone()
    return None if row is None else str(row["execution_id"])


def release(conn: Connection, trigger: str, key: str, execution_id: str) -> None:
    """Undo this transaction's own claim (work that was refused must not hold the key)."""
    conn.execute(
        "DELETE FROM webhook_dedup_keys WHERE trigger = ? AND key = ? AND execution_id = ?",
        (trigger, key, execution_id),
    )
