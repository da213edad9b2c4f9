"""Refused webhook requests: counted for ``/metrics`` and kept, capped, for operators.

"Why didn't my hook fire?" is answered by ``GET /admin/triggers/<name>/recent-refusals``
(:mod:`app.store.refusals`), fed by :func:`record`, which the webhook route calls
with every 4xx it answers: ``trigger_not_found``, ``trigger_disabled``,
``ip_not_allowed``, the signature codes, ``payload_too_large``, ``invalid_json``,
``trigger_busy``/``queue_full`` and the like. An unavailable store (503) is not
recorded - there is nowhere to write - and neither is a URL that is not a valid
trigger name.

* :data:`REFUSALS` counts every refusal as ``hookrunner_ingest_refusals_total{trigger,
  reason}``, a per-process prometheus-client counter like
  :data:`app.ingest.auth_failures.AUTH_FAILURES` (summed over workers under
  Gunicorn). ``trigger`` is empty for ``trigger_not_found``, so unknown names
  cannot grow the label set.
* The row written holds the time, the status and code answered, the source address
  (as decided by :mod:`app.ingest.client_address`) and the request id - never a body,
  header or signature value. At most :data:`WRITES_PER_WINDOW` rows per
  :data:`WRITE_WINDOW_SECONDS` per process are written, so a flood of refused
  requests costs bounded disk; the counter still counts each one.
* Recording never changes the answer: a failed write is logged at WARNING and dropped.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from app.clock import utc_now_iso
from app.ingest.auth_failures import LineBudget
from app.store import Database
from app.store import refusals as refusals_sql

log = logging.getLogger(__name__)

WRITES_PER_WINDOW = 120
WRITE_WINDOW_SECONDS = 60.0

# Registered in no registry: app.routes.metrics exposes it (or every worker's copy).
REFUSALS = Counter(
    "hookrunner_ingest_refusals",
    "Webhook requests answered with a 4xx refusal (not stored as deliveries).",
    labelnames=("trigger", "reason"),
    registry=None,
)

_budget = LineBudget(WRITES_PER_WINDOW, WRITE_WINDOW_SECONDS)


def record(
    db: Database,
    *,
    trigger: str,
    status: int,
    reason: str,
    source_address: str | None,
    request_id: str | None,
    budget: LineBudget | None = None,
) -> None:
    """Count one refusal and keep it if the write budget allows (never raises)."""
    label = "" if reason == "trigger_not_found" else trigger
    REFUSALS.labels(trigger=label, reason=reason).inc()
    if (budget or _budget).take() is None:
        return
    try:
        refusals_sql.record(
            db,
            trigger=trigger,
            at=utc_now_iso(),
            status=status,
            reason=reason,
            source_address=source_address,
            request_id=request_id,
        )
    except Exception as exc:
        log.warning("could not record a refused request: %s", type(exc).__name__)
