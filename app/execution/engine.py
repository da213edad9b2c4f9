"""The execution engine of one worker process: claim queued work, run it, record it.

* The executions table is the queue. :meth:`Engine.wake` (called right after an
  ingest commits) starts free work at once; a sweep every second catches the
  rest - other workers' deliveries, retries whose time has come, capacity that
  freed up.
* At most ``EXECUTION_POOL_SIZE`` executions run in this process, on as many
  runner greenlets/threads started with the engine (none is created per
  execution). Each execution runs in a fresh copy of the runner's context and
  carries the webhook's request id, its execution id and trigger name into
  every log line.
* Leases (see :mod:`app.execution.leases`) are renewed by a heartbeat; cancel
  requests made through any worker are picked up by the owner's sweep.
* :meth:`Engine.shutdown` stops claiming, lets running executions finish within
  the grace period, then stops the rest and records them ``interrupted``.
"""

from __future__ import annotations

import contextvars
import logging
import queue as work_queue
import threading
import time
from dataclasses import dataclass, field

import sentry_sdk

from app.clock import utc_now_iso
from app.config import Settings
from app.context import execution_id_var, request_id_var, start_thread, trigger_var
from app.errors import TriggerNotFound
from app.execution import leases
from app.execution.alerts import FailureAlerts
from app.execution.run import ExecutionRun
from app.live.notifier import ALL, CANCEL, WORK, Notifier
from app.outbound.breakers import BreakerRegistry
from app.store import Database
from app.store import execution_queue as queue
from app.triggers.registry import CompiledTrigger, TriggerRegistry

log = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0


@dataclass
class _Running:
    """One claimed execution of this process, from its claim until it is recorded."""

    claim: queue.Claim
    trigger: CompiledTrigger
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False  # stopped by shutdown: recorded as interrupted

    @property
    def token(self) -> str:
        """The claim token every write of this attempt presents."""
        return self.claim.token


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
        self._cancels_due = threading.Event()  # a cancel was announced: look at once
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        # Claimed work waiting for a runner; never longer than the pool, since a
        # claim is only made for a free slot. ``None`` tells a runner to stop.
        self._claimed: work_queue.Queue[_Running | None] = work_queue.Queue()
        self._loops: list[threading.Thread] = []
        self._runners: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Reconcile leases left by dead processes, then start dispatching."""
        alerts = FailureAlerts(self.db, self.settings, self.breakers)
        leases.reap(self.db, self.registry, self.settings, self.notifier, self.owner, alerts)
        self.notifier.watch(WORK, self.wake)  # queued in another process or host
        self.notifier.watch(CANCEL, self._cancel_requested)  # the sweep applies them
        self._runners = [
            start_thread(self._runner_loop, name=f"hookrunner-runner-{slot}")
            for slot in range(self.settings.execution_pool_size)
        ]
        self._loops = [start_thread(self._dispatch_loop), start_thread(self._heartbeat_loop)]

    def wake(self) -> None:
        self._wake.set()

    def _cancel_requested(self) -> None:
        self._cancels_due.set()
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
            running.done.wait(grace_seconds)
        for running in self._snapshot():
            running.interrupted = True
            running.cancelled.set()
        for running in self._snapshot():
            running.done.wait(10)
        self._closed.set()
        for _runner in self._runners:
            self._claimed.put(None)
        for loop in self._loops + self._runners:
            loop.join(2)

    def _tokens(self) -> list[str]:
        with self._lock:
            return [running.token for running in self._running.values()]

    def _snapshot(self) -> list[_Running]:
        with self._lock:
            return list(self._running.values())

    # --- dispatching ----------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        """Claim on every wake; look for cancel requests when one is announced and at
        least once a second (an announcement that never arrived only delays it)."""
        cancels_looked_at = time.monotonic()
        while not self._stopping.is_set():
            self._wake.wait(SWEEP_SECONDS)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                now = time.monotonic()
                if self._cancels_due.is_set() or now - cancels_looked_at >= SWEEP_SECONDS:
                    self._cancels_due.clear()
                    cancels_looked_at = now
                    self._apply_cancel_requests()
                self.dispatch_once()
            except Exception:
                log.exception("dispatch sweep failed")

    def _heartbeat_loop(self) -> None:
        interval = self.settings.execution_lease_seconds / 3
        while not self._closed.wait(interval):
            try:
                queue.heartbeat(self.db, self._tokens())
            except Exception:
                log.exception("lease heartbeat failed")

    def dispatch_once(self) -> int:
        """Claim and start as much queued work as capacity allows; returns how many."""
        started = 0
        while not self._stopping.is_set() and self._free_slots() > 0:
            round_started = 0
            for trigger_name in queue.triggers_with_work(self.db):
                free = self._free_slots()
                if free <= 0 or self._stopping.is_set():
                    break
                round_started += self._claim_and_start(trigger_name, free)
            started += round_started
            if round_started == 0:
                break
        return started

    def _free_slots(self) -> int:
        """Executions this process may still start (no query when the pool is full)."""
        with self._lock:
            return self.settings.execution_pool_size - len(self._running)

    def _claim_and_start(self, trigger_name: str, free: int) -> int:
        try:
            trigger = self.registry.get(trigger_name)
        except TriggerNotFound:
            self._fail_orphans(trigger_name, free)
            return 0
        claims = queue.claim_batch(
            self.db,
            trigger_name,
            self.owner,
            trigger.document.concurrency.max,
            limit=free,
            now=utc_now_iso(),
        )
        for claim in claims:
            running = _Running(claim, trigger)
            with self._lock:  # registered before a runner can finish it
                self._running[claim.execution_id] = running
            self._claimed.put(running)
        return len(claims)

    def _fail_orphans(self, trigger_name: str, limit: int) -> None:
        now = utc_now_iso()
        for claim in queue.claim_batch(self.db, trigger_name, self.owner, 1_000_000, limit, now):
            with self.db.write() as conn:
                queue.finish(
                    conn,
                    claim.execution_id,
                    token=claim.token,
                    status="failed",
                    exit_code=None,
                    error=f"trigger {trigger_name!r} no longer exists",
                    report={},
                )
            self.notifier.notify(claim.execution_id)
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

    def _runner_loop(self) -> None:
        """One slot of the pool: run claimed executions one after the other until told to stop.

        Each runs in a fresh copy of this runner's context, so nothing one
        execution sets in a context variable is seen by the next.
        """
        while (running := self._claimed.get()) is not None:
            contextvars.copy_context().run(self._execute, running)

    def _execute(self, holder: _Running) -> None:
        claim, trigger = holder.claim, holder.trigger
        execution_id, row = claim.execution_id, claim.row
        tokens = (
            request_id_var.set(row.request_id),
            execution_id_var.set(execution_id),
            trigger_var.set(trigger.name),
        )
        try:
            with sentry_sdk.isolation_scope() as scope:
                scope.set_tag("execution_id", execution_id)
                scope.set_tag("trigger", trigger.name)
                scope.set_tag("request_id", row.request_id)
                ExecutionRun(self.db, self.settings, claim.token, self.notifier, self.breakers).run(
                    row, trigger, holder.cancelled, lambda: holder.interrupted, claim.delivery
                )
        except Exception:
            log.exception("execution crashed in the engine")
        finally:
            with self._lock:
                self._running.pop(execution_id, None)
            request_id_var.reset(tokens[0])
            execution_id_var.reset(tokens[1])
            trigger_var.reset(tokens[2])
            holder.done.set()
            self._wake.set()
