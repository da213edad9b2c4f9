"""SQL for ``scheduler_leases``: one row per job, claimed atomically."""

from __future__ import annotations

from app.clock import utc_now_iso
from app.store.base import Database


def try_claim(db: Database, name: str, owner: str, seconds: float) -> bool:
    """Take the lease ``name`` for ``seconds`` unless another owner holds a live one.

    One upsert decides: the row is inserted, or updated only when the current
    lease has expired. ``rowcount`` tells whether this caller won.
    """
    now = utc_now_iso()
    with db.write() as conn:
        cursor = conn.execute(
            "INSERT INTO scheduler_leases (name, owner, expires_at, last_run_at)"
            " VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
            " expires_at = excluded.expires_at, last_run_at = excluded.last_run_at"
            " WHERE scheduler_leases.expires_at <= ?",
            (name, owner, utc_now_iso(seconds), now, now),
        )
    return cursor.rowcount == 1
