"""SQL for ``ended_sessions``: dashboard sessions signed out before their cookie expires.

A session is named by the SHA-256 of its own random token (the cookie never holds a
secret of the server's, and the table never holds a usable cookie). A row lives
until ``expires_at``, when the cookie would be refused anyway.
"""

from __future__ import annotations

from app.clock import utc_now_iso
from app.store.base import Database


def end(db: Database, session_digest: str, expires_at: str) -> None:
    """Record the session as ended (again: nothing changes)."""
    with db.write() as conn:
        conn.execute(
            "INSERT INTO ended_sessions (session_digest, ended_at, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (session_digest) DO NOTHING",
            (session_digest, utc_now_iso(), expires_at),
        )


def is_ended(db: Database, session_digest: str) -> bool:
    with db.read() as conn:
        row = conn.execute(
            "SELECT 1 FROM ended_sessions WHERE session_digest = ?", (session_digest,)
        ).fetchone()
    return row is not None


def delete_expired(db: Database) -> int:
    """Forget sessions whose cookies have expired (a scheduled job); returns the count."""
    with db.write() as conn:
        cursor = conn.execute("DELETE FROM ended_sessions WHERE expires_at <= ?", (utc_now_iso(),))
    return cursor.rowcount
