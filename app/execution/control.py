"""What operators do to executions: inspect, follow, cancel and re-run.

The admin routes call these and nothing below them. The rule for disabled
triggers is decided here and in :mod:`app.ingest.replay` the same way: a
disabled trigger starts no new work, so rerun (like replay) is refused with
409 ``trigger_disabled``; cancel is always allowed.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from app.errors import NotFound, TriggerDisabled
from app.ingest.dispatch import ExecutionService
from app.live.notifier import ALL, CANCEL, Notifier
from app.live.streams import stream_url
from app.store import Database, deliveries, execution_logs, execution_queue, executions
from app.triggers.registry import TriggerRegistry


@dataclass(frozen=True)
class ExecutionControl:
    db: Database
    notifier: Notifier
    triggers: TriggerRegistry
    service: ExecutionService

    def list(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of executions, newest first (no logs); see ``executions.list_recent``."""
        return executions.list_recent(self.db, **filters)

    def get(self, execution_id: str) -> dict[str, Any]:
        """One execution; its report joins the ingest stages (from the delivery) and the run's."""
        execution = executions.get(self.db, execution_id)
        delivery_id = execution.delivery_id
        ingest = deliveries.report(self.db, delivery_id) if delivery_id else {}
        return execution.api_view() | {"report": {**ingest, **execution.report}}

    def require(self, execution_id: str) -> str:
        """The status of an execution that must exist; raises NotFound."""
        status = execution_queue.status_of(self.db, execution_id)
        if status is None:
            raise NotFound(f"No execution has the id {execution_id!r}.")
        return status

    def logs(self, execution_id: str, after: int, limit: int) -> dict[str, Any]:
        status = self.require(execution_id)
        lines = execution_logs.after(self.db, execution_id, after, limit)
        return {"status": status, "items": lines, "last_seq": lines[-1]["seq"] if lines else after}

    def cancel(self, execution_id: str) -> dict[str, Any]:
        """Cancel a queued execution now, or ask a running one to stop (any worker).

        Raises NotFound for an unknown id and Conflict once it has ended.
        """
        previous = execution_queue.request_cancel(self.db, execution_id)
        engine = self.service.engine
        if previous == "running" and engine is not None:
            engine.cancel_local(execution_id)
        if previous == "running":
            self.notifier.notify(CANCEL)  # the owner may be another process or host
        self.notifier.notify(ALL)
        state = "cancelled" if previous == "queued" else "cancelling"
        return {"id": execution_id, "status": state}

    def rerun(self, execution_id: str, request_id: str | None) -> dict[str, Any]:
        """Queue a new execution of the same delivery; refused while the trigger is disabled."""
        original = executions.get(self.db, execution_id)
        if not self.triggers.get(original.trigger).enabled:
            raise TriggerDisabled()
        new_id = self.service.rerun(original, request_id)
        return {"execution_id": new_id, "rerun_of": execution_id, "stream_url": stream_url(new_id)}

    def follow_ups(self, execution_id: str) -> builtins.list[dict[str, Any]]:
        """The retries and reruns of an execution (summaries, oldest first)."""
        return executions.follow_ups(self.db, execution_id)
