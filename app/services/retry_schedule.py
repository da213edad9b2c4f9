"""Queue the next attempt of an execution (inside the caller's transaction)."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from app.clock import utc_now_iso
from app.db import executions
from app.schemas.triggers import Retry
from app.services.retry import next_delay


def schedule_retry(
    conn: sqlite3.Connection,
    row: dict[str, Any],
    policy: Retry | None,
    status: str,
    *,
    retryable: bool,
) -> str | None:
    """Insert attempt ``n + 1`` of ``row`` with its backoff; returns its id or None."""
    if policy is None:
        return None
    delay = next_delay(policy, int(row["attempt"]), status, retryable)
    if delay is None:
        return None
    retry_id = uuid.uuid4().hex
    now = utc_now_iso()
    executions.insert_queued(
        conn,
        execution_id=retry_id,
        trigger=row["trigger"],
        delivery_id=row["delivery_id"],
        request_id=row["request_id"],
        created_at=now,
        report={"retry": {"of": row["id"], "delay_seconds": round(delay, 3)}},
        attempt=int(row["attempt"]) + 1,
        retry_of=row["retry_of"] or row["id"],
        run_after=utc_now_iso(delay),
    )
    return retry_id
