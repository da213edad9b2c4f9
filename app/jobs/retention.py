"""The retention job: prune raw history after each trigger's ``retention_days``.

Only days already in ``metrics_daily`` are pruned, so metrics keep their
history; nothing is pruned before the first rollup. Executions still queued or
running are never pruned. Deleted triggers keep the default 30 days.
"""

from __future__ import annotations

from app.clock import utc_now_iso
from app.errors import TriggerNotFound
from app.store import Database
from app.store import metrics as metrics_sql
from app.store import retention as retention_sql
from app.triggers.registry import TriggerRegistry

DEFAULT_RETENTION_DAYS = 30


def prune(db: Database, registry: TriggerRegistry) -> dict[str, tuple[int, int]]:
    """Returns ``{trigger: (executions, deliveries)}`` deleted."""
    last = metrics_sql.last_rolled_day(db)
    if last is None:
        return {}
    rolled_until = metrics_sql.raw_since(last)
    pruned: dict[str, tuple[int, int]] = {}
    for trigger in retention_sql.known_triggers(db):
        try:
            days = registry.get(trigger).document.retention_days
        except TriggerNotFound:
            days = DEFAULT_RETENTION_DAYS
        cutoff = min(utc_now_iso(-days * 86400), rolled_until)
        counts = retention_sql.prune_before(db, trigger, cutoff)
        if any(counts):
            pruned[trigger] = counts
    return pruned
