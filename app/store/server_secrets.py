"""SQL for ``server_secrets``: random keys the server makes once and every process shares.

The first process to ask for a name creates it (``ON CONFLICT DO NOTHING``);
everyone, on any host sharing the store, then reads the same value.
"""

from __future__ import annotations

import secrets

from app.clock import utc_now_iso
from app.store.base import Database


def get_or_create(db: Database, name: str) -> str:
    """The secret called ``name``, made (32 random bytes, URL-safe) on first use."""
    with db.read() as conn:
        row = conn.execute("SELECT value FROM server_secrets WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return str(row["value"])
    with db.write() as conn:
        conn.execute(
            "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, secrets.token_urlsafe(32), utc_now_iso()),
        )
        row = conn.execute("SELECT value FROM server_secrets WHERE name = ?", (name,)).fetchone()
    return str(row["value"])
