"""SQL for ``ingest_refusals``: the last refused webhook requests, per trigger name, capped.

:func:`record` inserts one row and trims, in the same short transaction, the
rows of that name beyond :data:`PER_TRIGGER` and the table beyond
:data:`IN_ALL` (rows sharing the cut-off's timestamp may survive a trim: the cap
is exact up to ties). Rows carry no body, header or signature value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from app.store.base import Database
from app.store.row_ids import new_row_id

PER_TRIGGER = 50
IN_ALL = 5000


@dataclass(frozen=True)
class RefusalRow:
    at: str
    status: int
    reason: str
    source_address: str | None
    request_id: str | None

    def api_view(self) -> dict[str, Any]:
        return asdict(self)


def record(
    db: Database,
    *,
    trigger: str,
    at: str,
    status: int,
    reason: str,
    source_address: str | None,
    request_id: str | None,
) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO ingest_refusals"
            " (id, trigger, at, status, reason, source_address, request_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (new_row_id(), trigger, at, status, reason, source_address, request_id),
        )
        conn.execute(
            "DELETE FROM ingest_refusals WHERE trigger = ? AND at < ("
            " SELECT at FROM ingest_refusals WHERE trigger = ?"
            " ORDER BY at DESC LIMIT 1 OFFSET ?)",
            (trigger, trigger, PER_TRIGGER - 1),
        )
        conn.execute(
            "DELETE FROM ingest_refusals WHERE at < ("
            " SELECT at FROM ingest_refusals ORDER BY at DESC LIMIT 1 OFFSET ?)",
            (IN_ALL - 1,),
        )


def recent(db: Database, trigger: str, limit: int) -> list[RefusalRow]:
    """The newest refusals recorded for ``trigger``, newest first."""
    with db.read() as conn:
        rows = conn.execute(
            "SELECT at, status, reason, source_address, request_id FROM ingest_refusals"
            " WHERE trigger = ? ORDER BY at DESC, id DESC LIMIT ?",
            (trigger, limit),
        ).fetchall()
    return [
        RefusalRow(
            at=row["at"],
            status=int(row["status"]),
            reason=row["reason"],
            source_address=row["source_address"],
            request_id=row["request_id"],
        )
        for row in rows
    ]
