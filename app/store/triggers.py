"""SQL for ``triggers``. Driver errors become domain errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.clock import utc_now_iso
from app.errors import TriggerExists, TriggerNotFound
from app.store import execution_queue
from app.store.base import Database, IntegrityError


@dataclass(frozen=True)
class TriggerRow:
    name: str
    document: str  # JSON of the TriggerDocument, secrets included
    enabled: bool
    created_at: str
    updated_at: str


def _row(row: Any) -> TriggerRow:
    return TriggerRow(
        name=row["name"],
        document=row["document"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_COLUMNS = "name, document, enabled, created_at, updated_at"


def insert(db: Database, name: str, description: str, enabled: bool, document: str) -> TriggerRow:
    now = utc_now_iso()
    try:
        with db.write() as conn:
            conn.execute(
                "INSERT INTO triggers"
                " (name, description, enabled, document, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, description, int(enabled), document, now, now),
            )
            execution_queue.add_counters(conn, name)
    except IntegrityError as exc:
        raise TriggerExists(f"a trigger named {name!r} already exists") from exc
    return TriggerRow(name, document, enabled, now, now)


def get(db: Database, name: str) -> TriggerRow:
    with db.read() as conn:
        row = conn.execute(f"SELECT {_COLUMNS} FROM triggers WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise TriggerNotFound()
    return _row(row)


def list_all(db: Database) -> list[TriggerRow]:
    with db.read() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM triggers ORDER BY name").fetchall()
    return [_row(row) for row in rows]


def update(db: Database, name: str, description: str, enabled: bool, document: str) -> TriggerRow:
    now = utc_now_iso()
    with db.write() as conn:
        cursor = conn.execute(
            "UPDATE triggers SET description = ?, enabled = ?, document = ?, updated_at = ?"
            " WHERE name = ?",
            (description, int(enabled), document, now, name),
        )
        if cursor.rowcount == 0:
            raise TriggerNotFound()
        created = conn.execute("SELECT created_at FROM triggers WHERE name = ?", (name,)).fetchone()
    return TriggerRow(name, document, enabled, created["created_at"], now)


def delete(db: Database, name: str) -> None:
    """Delete a trigger and its dedup keys; its deliveries and executions stay."""
    with db.write() as conn:
        cursor = conn.execute("DELETE FROM triggers WHERE name = ?", (name,))
    if cursor.rowcount == 0:
        raise TriggerNotFound()
