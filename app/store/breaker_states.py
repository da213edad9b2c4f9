"""SQL for ``breaker_states``: the last state any worker saw for each destination."""

from __future__ import annotations

from app.clock import utc_now_iso
from app.store.base import Database


def record(db: Database, destination: str, state: str, owner: str) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO breaker_states (destination, state, changed_at, owner)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE SET"
            " state = excluded.state, changed_at = excluded.changed_at, owner = excluded.owner",
            (destination, state, utc_now_iso(), owner),
        )


def all_states(db: Database) -> dict[str, str]:
    with db.read() as conn:
        rows = conn.execute("SELECT destination, state FROM breaker_states").fetchall()
    return {str(row[0]): str(row[1]) for row in rows}
