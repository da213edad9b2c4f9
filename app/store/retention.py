"""SQL for pruning raw history (deliveries, executions and their logs)."""

from __future__ import annotations

from app.store.base import Database
from app.store.executions import FINAL_STATUSES

_FINAL = "(" + ", ".join(f"'{status}'" for status in FINAL_STATUSES) + ")"
BATCH = 500


def known_triggers(db: Database) -> list[str]:
    """Every trigger name that has history, existing or deleted."""
    with db.read() as conn:
        rows = conn.execute(
            "SELECT DISTINCT trigger FROM deliveries UNION SELECT DISTINCT trigger FROM executions"
        ).fetchall()
    return [str(row[0]) for row in rows]


def prune_before(db: Database, trigger: str, cutoff: str) -> tuple[int, int]:
    """Delete finished executions (logs cascade) and deliveries older than ``cutoff``.

    Works in batches of :data:`BATCH` rows so no write transaction runs long.
    Returns (executions, deliveries) deleted.
    """
    executions = deliveries = 0
    while True:
        with db.write() as conn:
            count = conn.execute(
                "DELETE FROM executions WHERE id IN (SELECT id FROM executions"
                f" WHERE trigger = ? AND created_at < ? AND status IN {_FINAL} LIMIT ?)",
                (trigger, cutoff, BATCH),
            ).rowcount
        executions += count
        if count < BATCH:
            break
    while True:
        with db.write() as conn:
            count = conn.execute(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries"
                " WHERE trigger = ? AND received_at < ? LIMIT ?)",
                (trigger, cutoff, BATCH),
            ).rowcount
        deliveries += count
        if count < BATCH:
            break
    return executions, deliveries
