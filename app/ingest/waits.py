"""Waiting for an execution to end, for triggers that answer with its result
(``response.mode: wait``).

The webhook route calls :meth:`ResultWaiter.wait` only after the ingest
transaction has committed (or, for a duplicate, found the original
execution), so the delivery is recorded and deduplicated whatever happens to
the wait. The execution runs wherever it is claimed - an engine process, this
web worker (``ENGINE_PROCESSES=0``), another host on PostgreSQL - and the
database is the source of truth, as for live streams (:mod:`app.live.streams`):

* the waiter subscribes to the execution's notifier topic (woken by the run in
  this process, or through the store's backend - the doorbell on SQLite,
  ``LISTEN/NOTIFY`` on PostgreSQL - when it runs elsewhere), then repeats
  ``clear()``, read the status, ``wait()``; a lost notification only delays,
  because each wait lasts at most :data:`POLL_SECONDS`;
* each read borrows a connection for one autocommit query: nothing is held
  while waiting, and the waits are gevent-friendly (``threading.Event`` is
  patched in the worker), so a waiting request costs one greenlet;
* the wait never outlasts ``RESPONSE_WAIT_MAX_SECONDS`` nor the process's
  shutdown: then the caller answers 202 and the execution goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app.lifecycle import shutting_down
from app.live.notifier import Notifier
from app.store import Database, execution_logs
from app.store import execution_queue as queue
from app.store.executions import FINAL_STATUSES

POLL_SECONDS = 0.5
SUCCESS_STATUSES = ("succeeded",)
FAILURE_STATUSES = tuple(status for status in FINAL_STATUSES if status not in SUCCESS_STATUSES)


@dataclass(frozen=True)
class Waited:
    """What a wait found: the execution's status fields, or None when it is gone."""

    row: dict[str, Any] | None

    @property
    def ended(self) -> bool:
        return self.row is not None and self.row["status"] in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.row is not None and self.row["status"] in SUCCESS_STATUSES


class ResultWaiter:
    """Waits for executions of one app's store, woken by its notifier."""

    def __init__(self, db: Database, notifier: Notifier, max_seconds: float) -> None:
        self.db = db
        self.notifier = notifier
        self.max_seconds = max_seconds

    def wait(self, execution_id: str, timeout_seconds: float) -> Waited:
        """The execution once it has a final status, or as it is when the wait ends.

        Waits at most ``timeout_seconds`` (capped at ``max_seconds``); returns
        at once for an execution that has already ended (a duplicate of an
        old delivery) or is gone (pruned).
        """
        deadline = time.monotonic() + min(timeout_seconds, self.max_seconds)
        subscription = self.notifier.subscribe(execution_id)
        try:
            while True:
                subscription.clear()
                waited = Waited(queue.status_row(self.db, execution_id))
                if waited.row is None or waited.ended:
                    return waited
                remaining = deadline - time.monotonic()
                if remaining <= 0 or shutting_down.is_set():
                    return waited
                subscription.wait(min(POLL_SECONDS, remaining))
        finally:
            self.notifier.unsubscribe(subscription)

    def output(self, execution_id: str, max_bytes: int) -> tuple[str, bool]:
        """The execution's output for a response, and whether it was cut at ``max_bytes``."""
        return execution_logs.output_text(self.db, execution_id, max_bytes)
