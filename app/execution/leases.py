"""Leases on running executions, and the reaper that reconciles dead ones.

Protocol:

* A worker process identifies itself as ``owner`` = ``host:pid:token`` (the
  random token tells a restarted process with a recycled pid apart).
* Claiming an execution takes its lease with a fresh claim token; the process
  renews ``heartbeat_at`` of exactly the executions it runs (by token) every
  third of ``EXECUTION_LEASE_SECONDS``. Every write of an attempt presents its
  token (fencing): once the reaper ended it, the old owner's writes match nothing.
* The reaper - at every process start-up and every minute - ends each running
  execution whose lease has expired, or whose owner was a process on this host
  that no longer exists (so a restart after ``kill -9`` reconciles at once), as
  ``interrupted``; when the trigger's retry policy allows, a new attempt is
  queued in the same transaction. Nothing is ever left ``running`` for good.
  When the dead owner was a process on this host, the command ``files`` it
  left behind are removed too (its guard has killed the command already).
* Whoever reaps an execution (exactly one process: the end is fenced by the
  claim token) hands the ``interrupted`` outcome to the failure notifications,
  so a trigger whose ``notify.on`` lists ``interrupted`` hears of a dead host.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from app.clock import parse_iso, utc_now, utc_now_iso
from app.config import Settings
from app.errors import TriggerNotFound
from app.execution.alerts import FailureAlerts
from app.execution.retry import schedule_retry
from app.execution.runners.base import RunResult
from app.execution.runners.command import remove_files_of
from app.live.notifier import ALL, Notifier
from app.store import Database, executions
from app.store import execution_queue as queue
from app.store.executions import ExecutionRow
from app.triggers.registry import CompiledTrigger, TriggerRegistry
from app.triggers.templates import trigger_secrets

log = logging.getLogger(__name__)

HOSTNAME = socket.gethostname()


def new_owner() -> str:
    return f"{HOSTNAME}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_gone(owner: str | None) -> bool:
    """True when ``owner`` was a process on this host that no longer exists."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOSTNAME or not pid_text.isdigit():
        return False
    return not _process_alive(int(pid_text))


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (killed, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:  # no /proc: trust kill(0)
        return True


def _expired(row: ExecutionRow, lease_seconds: int) -> bool:
    if row.heartbeat_at is None:
        return True
    age = (utc_now() - parse_iso(row.heartbeat_at)).total_seconds()
    return age > lease_seconds


def reap(
    db: Database,
    registry: TriggerRegistry,
    settings: Settings,
    notifier: Notifier,
    self_owner: str,
    alerts: FailureAlerts | None = None,
) -> int:
    """Interrupt running executions whose owner is gone; returns how many.

    ``alerts`` (when given) is told of each execution this call ended.
    """
    reaped = 0
    for row in executions.running(db):
        if row.owner == self_owner:
            continue
        if not (_expired(row, settings.execution_lease_seconds) or owner_is_gone(row.owner)):
            continue
        interrupted_at = utc_now_iso()
        report = {**row.report, "interrupted_at": interrupted_at}
        error = f"interrupted: worker {row.owner} stopped without finishing it"
        trigger = _trigger(registry, row.trigger)
        with db.write() as conn:
            if not queue.finish(
                conn,
                row.id,
                token=row.claim_token,
                status="interrupted",
                exit_code=None,
                error=error,
                report=report,
            ):
                continue
            policy = trigger.document.retry if trigger is not None else None
            retry_id = schedule_retry(conn, row, policy, "interrupted", retryable=True)
        reaped += 1
        if alerts is not None and trigger is not None:
            outcome = RunResult("interrupted", error=error)
            times = {"started_at": row.started_at, "finished_at": interrupted_at}
            secrets = trigger_secrets(trigger.document)
            alerts.finished(row, trigger.document, outcome, times, secrets)
        if owner_is_gone(row.owner):  # its guard has killed the command: nothing uses them
            remove_files_of(row.id)
        notifier.notify(row.id)
        notifier.notify(ALL)
        log.warning(
            "execution interrupted",
            extra={"execution_id": row.id, "trigger": row.trigger, "retry_id": retry_id},
        )
    return reaped


def _trigger(registry: TriggerRegistry, name: str) -> CompiledTrigger | None:
    try:
        return registry.get(name)
    except TriggerNotFound:
        return None
