"""When a failed attempt is tried again: exponential backoff with jitter.

Attempt ``n`` (1-based) that failed, timed out or was interrupted is followed
by attempt ``n + 1`` while ``n < max_attempts`` and the failure is retryable.
The delay is ``min(max_backoff, backoff * 2 ** (n - 1))``, of which a random
half is taken off ("equal jitter") so that many failures at once do not retry
in lock-step. The next attempt is its own execution row with ``run_after``,
so a restart keeps the schedule: :func:`schedule_retry` inserts it inside the
caller's transaction.
"""

from __future__ import annotations

import random

from app.clock import utc_now_iso
from app.store import Connection, executions
from app.store.executions import ExecutionRow
from app.store.row_ids import new_row_id
from app.triggers.schema import Retry

RETRYABLE_STATUSES = frozenset({"failed", "timed_out", "interrupted"})


def may_follow(policy: Retry | None, attempt: int, status: str, retryable: bool) -> bool:
    """Whether attempt ``attempt`` ending with ``status`` can be followed by another."""
    return (
        policy is not None
        and status in RETRYABLE_STATUSES
        and retryable
        and attempt < policy.max_attempts
    )


def next_delay(policy: Retry, attempt: int, status: str, retryable: bool = True) -> float | None:
    """Seconds until the next attempt, or None when there is none."""
    if not may_follow(policy, attempt, status, retryable):
        return None
    delay = float(min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** (attempt - 1)))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security


def schedule_retry(
    conn: Connection,
    row: ExecutionRow,
    policy: Retry | None,
    status: str,
    *,
    retryable: bool,
) -> str | None:
    """Insert attempt ``n + 1`` of ``row`` with its backoff; returns its id or None."""
    if policy is None:
        return None
    delay = next_delay(policy, row.attempt, status, retryable)
    if delay is None:
        return None
    retry_id = new_row_id()
    now = utc_now_iso()
    executions.insert_queued(
        conn,
        execution_id=retry_id,
        trigger=row.trigger,
        delivery_id=row.delivery_id,
        request_id=row.request_id,
        created_at=now,
        report={"retry": {"of": row.id, "delay_seconds": round(delay, 3)}},
        attempt=row.attempt + 1,
        retry_of=row.retry_of or row.id,
        run_after=utc_now_iso(delay),
    )
    return retry_id
