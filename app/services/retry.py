"""When a failed attempt is tried again: exponential backoff with jitter.

Attempt ``n`` (1-based) that failed, timed out or was interrupted is followed
by attempt ``n + 1`` while ``n < max_attempts`` and the failure is retryable.
The delay is ``min(max_backoff, backoff * 2 ** (n - 1))``, of which a random
half is taken off ("equal jitter") so that many failures at once do not retry
in lock-step. The next attempt is its own execution row with ``run_after``,
so a restart keeps the schedule.
"""

from __future__ import annotations

import random

from app.schemas.triggers import Retry

RETRYABLE_STATUSES = frozenset({"failed", "timed_out", "interrupted"})


def next_delay(policy: Retry, attempt: int, status: str, retryable: bool = True) -> float | None:
    """Seconds until the next attempt, or None when there is none."""
    if status not in RETRYABLE_STATUSES or not retryable or attempt >= policy.max_attempts:
        return None
    delay = float(min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** (attempt - 1)))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security
