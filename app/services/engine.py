"""The execution engine of one worker process: claim queued work, run it, record it.

* The executions table is the queue. :meth:`Engine.wake` (called right after an
  ingest commits) starts free work at once; a sweep every second catches the
  rest - other workers' deliveries, retries whose time has come, capacity that
  freed up.
* At most ``EXECUTION_POOL_SIZE`` executions run in this process; each runs in
  its own greenlet/thread started with a copy of the context, and carries the
  webhook's request id, its execution id and trigger name into every log line.
* Leases (see :mod:`app.services.leases`) are renewed by a heartbeat; cancel
  requests made through any worker are picked up by the owner's sweep.
* :meth:`Engine.shutdown` stops claiming, lets running executions finish within
  the grace period, then stops the rest and records them ``interrupted``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sentry_sdk

from app.clock import parse_iso, utc_now_iso
from app.config import Settings
from app.context import execution_id_var, request_id_var, trigger_var
from app.db import Database, execution_logs, executions
from app.db import deliveries as deliveries_sql
from app.db import execution_queue as queue
from app.errors import NotFound, TriggerNotFound
from app.schemas.triggers import CommandAction, HttpAction
from app.services import leases
from app.services.inbound import parse_body
from app.services.notifier import ALL, notifier
from app.services.output import OutputBuffer
from app.services.rendering import mask_secrets, template_context, trigger_secrets
from app.services.retry_schedule import schedule_retry
from app.services.runners.base import RunContext, RunResult
from app.services.runners.command import run_command
from app.services.trigger_registry import CompiledTrigger, TriggerRegistry

log = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
_STDERR_TAIL_LINES = 5


def spawn(target: Callable[[], None]) -> threading.Thread:
    """Start ``target`` in a daemon thread (a greenlet under gevent) with this context."""
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    thread.start()
    return thread


@dataclass
class _Running:
    ctx: RunContext
    thread: threading.Thread | None = None  # set before it is registered
    interrupted: bool = False


class Engine:
    def __init__(self, db: Database, settings: Settings, registry: TriggerRegistry) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
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
        leases.reap(self.db, self.registry, self.settings, self.owner)
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
            running.ctx.cancelled.set()
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
        holder = _Running(ctx=self._placeholder_ctx(execution_id, trigger_name))
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
            notifier.notify(execution_id)
            notifier.notify(ALL)

    def _placeholder_ctx(self, execution_id: str, trigger: str) -> RunContext:
        # Holds the cancel event from the moment of the claim until the real context exists.
        return RunContext(
            execution_id=execution_id,
            delivery_id=None,
            trigger=trigger,
            request_id=None,
            raw_body=b"",
            content_type=None,
            template_context={},
            secrets=[],
            output=_NullOutput(),
            settings=self.settings,
        )

    # --- cancellation ---------------------------------------------------------------

    def cancel_local(self, execution_id: str) -> bool:
        """Signal a running execution of this process to stop; False if not ours."""
        with self._lock:
            running = self._running.get(execution_id)
        if running is None:
            return False
        running.ctx.cancelled.set()
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
                self._run_and_record(row, trigger, holder)
        except Exception:
            log.exception("execution crashed in the engine")
        finally:
            with self._lock:
                self._running.pop(execution_id, None)
            request_id_var.reset(tokens[0])
            execution_id_var.reset(tokens[1])
            trigger_var.reset(tokens[2])
            self._wake.set()

    def _run_and_record(
        self, row: dict[str, Any], trigger: CompiledTrigger, holder: _Running
    ) -> None:
        action = trigger.document.action
        max_bytes = (
            action.max_output_bytes if isinstance(action, CommandAction) else 16 * 1024 * 1024
        )
        output = OutputBuffer(self.db, row["id"], max_bytes)
        ctx = self._context(row, trigger, output, holder.ctx.cancelled)
        holder.ctx = ctx
        notifier.notify(row["id"])
        notifier.notify(ALL)
        log.info("execution started", extra={"attempt": row["attempt"]})
        sentry_sdk.add_breadcrumb(category="execution", message="started", level="info")
        try:
            result = self._run_action(action, ctx)
        except Exception as exc:
            log.exception("runner failed unexpectedly")
            sentry_sdk.capture_exception(exc)
            result = RunResult("failed", error="internal error while running the action")
        finally:
            output.close()
        if holder.interrupted and result.status in ("cancelled", "failed", "timed_out"):
            result.status, result.error = "interrupted", "interrupted by worker shutdown"
        self._record(row, trigger, result, output, ctx.secrets)

    @staticmethod
    def _run_action(action: CommandAction | HttpAction, ctx: RunContext) -> RunResult:
        if isinstance(action, CommandAction):
            return run_command(action, ctx)
        from app.services.runners.http import run_http

        return run_http(action, ctx)

    def _context(
        self,
        row: dict[str, Any],
        trigger: CompiledTrigger,
        output: OutputBuffer,
        cancelled: threading.Event,
    ) -> RunContext:
        try:
            delivery = (
                deliveries_sql.get(self.db, row["delivery_id"]) if row["delivery_id"] else None
            )
        except NotFound:
            delivery = None
        body, headers, query, content_type = b"", {}, {}, None
        if delivery is not None:
            body, headers, query = delivery["body"], delivery["headers"], delivery["query"]
            content_type = delivery["content_type"]
        try:
            parsed: Any = parse_body(body, content_type, require_json=False).value
        except Exception:
            parsed = body.decode("utf-8", errors="replace")
        return RunContext(
            execution_id=row["id"],
            delivery_id=row["delivery_id"],
            trigger=trigger.name,
            request_id=row["request_id"],
            raw_body=body,
            content_type=content_type,
            template_context=template_context(
                body=parsed,
                headers=headers,
                query=query,
                trigger=trigger.name,
                delivery_id=row["delivery_id"] or "",
            ),
            secrets=trigger_secrets(trigger.document),
            output=output,
            settings=self.settings,
            cancelled=cancelled,
        )

    def _record(
        self,
        row: dict[str, Any],
        trigger: CompiledTrigger,
        result: RunResult,
        output: OutputBuffer,
        secrets: list[str],
    ) -> None:
        current = executions.get(self.db, row["id"])
        finished_at = utc_now_iso()
        report = dict(current["report"])
        report.update(
            attempt=row["attempt"],
            started_at=current["started_at"],
            finished_at=finished_at,
            queue_wait_ms=_ms_between(current["created_at"], current["started_at"]),
            duration_ms=_ms_between(current["started_at"], finished_at),
            status=result.status,
            exit_code=result.exit_code,
            output_bytes=output.bytes,
            output_truncated=output.dropped_bytes > 0,
            action=result.details,
        )
        with self.db.write() as conn:
            finished = queue.finish(
                conn,
                row["id"],
                owner=self.owner,
                status=result.status,
                exit_code=result.exit_code,
                error=result.error,
                report=report,
            )
            retry_id = (
                schedule_retry(
                    conn, row, trigger.document.retry, result.status, retryable=result.retryable
                )
                if finished
                else None
            )
        notifier.notify(row["id"])
        notifier.notify(ALL)
        self._log_outcome(row["id"], result, report, retry_id, finished, secrets)

    def _log_outcome(
        self,
        execution_id: str,
        result: RunResult,
        report: dict[str, Any],
        retry_id: str | None,
        finished: bool,
        secrets: list[str],
    ) -> None:
        extra = {
            "status": result.status,
            "exit_code": result.exit_code,
            "duration_ms": report["duration_ms"],
            "retry_id": retry_id,
        }
        sentry_sdk.add_breadcrumb(category="execution", message=result.status, level="info")
        if not finished:
            log.warning("execution finished after its lease was reaped", extra=extra)
        elif result.status in ("succeeded", "cancelled"):
            log.info("execution finished", extra=extra)
        else:
            stderr = mask_secrets(
                execution_logs.tail(self.db, execution_id, "stderr", _STDERR_TAIL_LINES), secrets
            )
            log.error(
                "execution %s: %s",
                result.status,
                result.error,
                extra={**extra, "stderr_tail": stderr},
            )


class _NullOutput:
    def line(self, stream: str, text: str) -> None:
        return None

    def system(self, text: str) -> None:
        return None


def _ms_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((parse_iso(end) - parse_iso(start)).total_seconds() * 1000, 3)
