"""The execution engine of one worker process: claim queued work, run it, record it.

* The executions table is the queue. :meth:`Engine.wake` (called right after an
  ingest commits) starts free work at once; a sweep every second catches the
  rest - other workers' deliveries, retries whose time has come, capacity that
  freed up.
* At most ``EXECUTION_POOL_SIZE`` executions run in this process; each runs in
  its own greenlet/thread started with a copy of the context, and carries the
  webhook's request id, its execution id and trigger name into every log line.
* Leases (see :mod:`app.execution.leases`) are renewed by a heartbeat; cancel
  requests made through any worker are picked up by the owner's sweep.
* :meth:`Engine.shutdown` stops claiming, lets running executions finish within
  the grace period, then stops the rest and records them ``interrupted``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import sentry_sdk

from app.clock import utc_now_iso
from app.config import Settings
from app.context import execution_id_var, request_id_var, trigger_var
from app.errors import TriggerNotFound
from app.execution import leases
from app.execution.run import ExecutionRun
from app.live.notifier import ALL, Notifier
from app.outbound.breakers import BreakerRegistry
from app.store import Database, executions
from app.store import execution_queue as queue
from app.triggers.registry import CompiledTrigger, TriggerRegistry

log = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0


def spawn(target: Callable[[], None]) -> threading.Thread:
    """Start ``target`` in a daemon thread (a greenlet under gevent) with this context."""
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    thread.start()
    return thread


@dataclass
class _Running:
    cancelled: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None  # set before it is registered
    interrupted: bool = False  # stopped by shutdown: recorded as interrupted


class Engine:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: TriggerRegistry,
        notifier: Notifier,
        breakers: BreakerRegistry,
    ) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.notifier = notifier
        self.breakers = breakers
        self.owner = leases.new_owner()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._loops: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Reconcile leases left by dead processes, then start dispatching."""
        leases.reap(self.db, self.registry, self.settings, self.notifier, self.owner)
        self._loops = [spawn(self._dispatch_loop), spawn(self._heartbeat_loop)]

    def wake(self) -> None:
        self._wake.set()

    def running_ids(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def stop_claiming(self) -> None:
        self._stopping.set()
        self._wake.set()

    def shutdown(self, grace_seconds: float) -> None:
        """Stop claiming; wait up to ``grace_seconds``; interrupt what still runs."""
        self._stopping.set()
        self._wake.set()
        for running in self._snapshot():
            if running.thread is not None:
                running.thread.join(grace_seconds)
        for running in self._snapshot():
            running.interrupted = True
            running.cancelled.set()
        for running in self._snapshot():
            if running.thread is not None:
                running.thread.join(10)
        self._closed.set()
        for loop in self._loops:
            loop.join(2)

    def _snapshot(self) -> list[_Running]:
        with self._lock:
            return list(self._running.values())

    # --- dispatching ----------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(SWEEP_SECONDS)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._apply_cancel_requests()
                self.dispatch_once()
            except Exception:
                log.exception("dispatch sweep failed")

    def _heartbeat_loop(self) -> None:
        interval = self.settings.execution_lease_seconds / 3
        while not self._closed.wait(interval):
            try:
                if self.running_ids():
                    queue.heartbeat(self.db, self.owner)
            except Exception:
                log.exception("lease heartbeat failed")

    def dispatch_once(self) -> int:
        """Claim and start as much queued work as capacity allows; returns how many."""
        started = 0
        while not self._stopping.is_set():
            free = self.settings.execution_pool_size - len(self.running_ids())
            if free <= 0:
                break
            round_started = 0
            for row in queue.claimable(self.db, utc_now_iso(), limit=free):
                if round_started >= free:
                    break
                if self._claim_and_start(row["id"], row["trigger"]):
                    round_started += 1
            started += round_started
            if round_started == 0:
                break
        return started

    def _claim_and_start(self, execution_id: str, trigger_name: str) -> bool:
        try:
            trigger = self.registry.get(trigger_name)
        except TriggerNotFound:
            self._fail_orphan(execution_id, trigger_name)
            return False
        max_running = trigger.document.concurrency.max
        if not queue.claim(self.db, execution_id, trigger_name, self.owner, max_running):
            return False
        holder = _Running()
        holder.thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(lambda: self._execute(execution_id, trigger, holder),),
            daemon=True,
        )
        with self._lock:  # registered and started together: shutdown sees a live thread
            self._running[execution_id] = holder
            holder.thread.start()
        return True

    def _fail_orphan(self, execution_id: str, trigger_name: str) -> None:
        if queue.claim(self.db, execution_id, trigger_name, self.owner, 1_000_000):
            with self.db.write() as conn:
                queue.finish(
                    conn,
                    execution_id,
                    owner=self.owner,
                    status="failed",
                    exit_code=None,
                    error=f"trigger {trigger_name!r} no longer exists",
                    report={},
                )
            self.notifier.notify(execution_id)
            self.notifier.notify(ALL)

    # --- cancellation ---------------------------------------------------------------

    def cancel_local(self, execution_id: str) -> bool:
        """Signal a running execution of this process to stop; False if not ours."""
        with self._lock:
            running = self._running.get(execution_id)
        if running is None:
            return False
        running.cancelled.set()
        return True

    def _apply_cancel_requests(self) -> None:
        if self.running_ids():
            for execution_id in queue.cancel_requested(self.db, self.owner):
                self.cancel_local(execution_id)

    # --- running one execution ------------------------------------------------------

    def _execute(self, execution_id: str, trigger: CompiledTrigger, holder: _Running) -> None:
        row = executions.get(self.db, execution_id)
        tokens = (
            request_id_var.set(row["request_id"]),
            execution_id_var.set(execution_id),
            trigger_var.set(trigger.name),
        )
        try:
            with sentry_sdk.isolation_scope() as scope:
                scope.set_tag("execution_id", execution_id)
                scope.set_tag("trigger", trigger.name)
                scope.set_tag("request_id", row["request_id"])
                ExecutionRun(self.db, self.settings, self.owner, self.notifier, self.breakers).run(
                    row, trigger, holder.cancelled, lambda: holder.interrupted
                )
        except Exception:
            log.exception("execution crashed in the engine")
        finally:
            with self._lock:
                self._running.pop(execution_id, None)
            request_id_var.reset(tokens[0])
            execution_id_var.reset(tokens[1])
            trigger_var.reset(tokens[2])
            self._wake.set()
