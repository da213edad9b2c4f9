"""SQL for ``admin_tokens``: only SHA-256 digests of tokens are stored.

Each token has a role (:data:`ROLES`): ``admin`` may do everything, ``viewer``
only reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from app.clock import utc_now_iso
from app.store.base import Database

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")

# last_used_at is refreshed at most this often, so reads stay reads.
_TOUCH_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class ActiveToken:
    id: str
    role: Role


def insert(db: Database, name: str, token_sha256: str, role: Role = "admin") -> str:
    token_id = uuid.uuid4().hex
    with db.write() as conn:
        conn.execute(
            "INSERT INTO admin_tokens (id, name, token_sha256, created_at, role)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_id, name, token_sha256, utc_now_iso(), role),
        )
    return token_id


def find_active_token(db: Database, token_sha256: str) -> ActiveToken | None:
    """The unrevoked token with this digest (id and role), touching ``last_used_at``."""
    with db.read() as conn:
        row = conn.execute(
            "SELECT id, role, last_used_at FROM admin_tokens"
            " WHERE token_sha256 = ? AND revoked_at IS NULL",
            (token_sha256,),
        ).fetchone()
    if row is None:
        return None
    stale_before = utc_now_iso(-_TOUCH_INTERVAL_SECONDS)
    if row["last_used_at"] is None or row["last_used_at"] < stale_before:
        with db.write() as conn:
            conn.execute(
                "UPDATE admin_tokens SET last_used_at = ? WHERE id = ?", (utc_now_iso(), row["id"])
            )
    return ActiveToken(str(row["id"]), "viewer" if row["role"] == "viewer" else "admin")


def find_by_id(db: Database, token_id: str) -> ActiveToken | None:
    """The unrevoked token with this id (its role), or None once revoked or deleted."""
    with db.read() as conn:
        row = conn.execute(
            "SELECT id, role FROM admin_tokens WHERE id = ? AND revoked_at IS NULL", (token_id,)
        ).fetchone()
    if row is None:
        return None
    return ActiveToken(str(row["id"]), "viewer" if row["role"] == "viewer" else "admin")


def find_active(db: Database, token_sha256: str) -> str | None:
    """Id of the unrevoked token with this digest, touching ``last_used_at``."""
    found = find_active_token(db, token_sha256)
    return found.id if found else None


def list_all(db: Database) -> list[dict[str, str | None]]:
    with db.read() as conn:
        rows = conn.execute(
            "SELECT id, name, role, created_at, last_used_at, revoked_at FROM admin_tokens"
            " ORDER BY created_at"
        ).fetchall()
    return [dict(row) for row in rows]


def revoke(db: Database, token_id: str) -> bool:
    """Revoke an active token; False when there is none with that id."""
    with db.write() as conn:
        cursor = conn.execute(
            "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (utc_now_iso(), token_id),
        )
    return cursor.rowcount == 1
