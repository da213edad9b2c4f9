"""One claimed execution, from its context to its recorded outcome.

:class:`ExecutionRun` builds the runner's context from the stored delivery,
runs the action with output persisted as it happens, and records the final
status with its processing report in one transaction - together with the next
attempt when the retry policy asks for one - and then hands the outcome to
:mod:`app.execution.alerts` (failure notifications, never blocking). The
engine decides *when* to run; this module decides nothing about scheduling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import sentry_sdk

from app.clock import ms_between, parse_iso, utc_now_iso
from app.config import Settings
from app.errors import NotFound
from app.execution.alerts import FailureAlerts
from app.execution.output import OutputBuffer
from app.execution.retry import may_follow, schedule_retry
from app.execution.runners import runner_for
from app.execution.runners.base import RunContext, RunResult
from app.ingest.payloads import parse_for_trigger
from app.live.notifier import ALL, Notifier
from app.outbound.breakers import BreakerRegistry
from app.store import Connection, Database, execution_logs
from app.store import deliveries as deliveries_sql
from app.store import execution_queue as queue
from app.store.deliveries import DeliveryRecord
from app.store.executions import ExecutionRow
from app.triggers.registry import CompiledTrigger
from app.triggers.schema import CommandAction, HttpAction
from app.triggers.templates import mask_secrets, template_context, trigger_secrets

log = logging.getLogger(__name__)

_STDERR_TAIL_LINES = 5
RETRY_START_SECONDS = 0.1
RETRY_CAP_SECONDS = 5.0
_HTTP_OUTPUT_CAP = 16 * 1024 * 1024


class ExecutionRun:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        token: str,
        notifier: Notifier,
        breakers: BreakerRegistry,
    ) -> None:
        self.db = db
        self.settings = settings
        self.token = token  # the claim token: the final write is fenced by it
        self.notifier = notifier
        self.breakers = breakers
        self.alerts = FailureAlerts(db, settings, breakers)

    def run(
        self,
        row: ExecutionRow,
        trigger: CompiledTrigger,
        cancelled: threading.Event,
        interrupted: Callable[[], bool],
        delivery: DeliveryRecord | None = None,
    ) -> None:
        """Run the action, persist its output, record the outcome, schedule a retry.

        ``delivery`` is the stored delivery when the caller already has it (the
        claim brought it); otherwise it is read here.
        """
        action = trigger.document.action
        max_bytes = (
            action.max_output_bytes if isinstance(action, CommandAction) else _HTTP_OUTPUT_CAP
        )
        if delivery is None:
            delivery = self._delivery(row)
        secrets = trigger_secrets(trigger.document)
        if delivery is not None and delivery.credentials:
            secrets += _credential_values(delivery.credentials)
        output = OutputBuffer(self.db, self.notifier, row.id, max_bytes, secrets)
        _ingest_breadcrumbs(delivery.report if delivery else {}, row)
        ctx = self._context(row, trigger, delivery, output, cancelled, secrets)
        self.notifier.notify(row.id)
        self.notifier.notify(ALL)
        log.info("execution started", extra={"attempt": row.attempt})
        _breadcrumb("started", {"attempt": row.attempt})
        try:
            result = self._run_action(action, ctx)
        except Exception as exc:
            log.exception("runner failed unexpectedly")
            sentry_sdk.capture_exception(exc)
            result = RunResult("failed", error="internal error while running the action")
        finally:
            until_stored(output.close, interrupted, "the last output lines")
        if interrupted() and result.status in ("cancelled", "failed", "timed_out"):
            result.status, result.error = "interrupted", "interrupted by worker shutdown"
        until_stored(
            lambda: self._record(row, trigger, result, output, ctx.secrets),
            interrupted,
            "the outcome",
        )

    @staticmethod
    def _run_action(action: CommandAction | HttpAction, ctx: RunContext) -> RunResult:
        return runner_for(action.type)(action, ctx)

    def _delivery(self, row: ExecutionRow) -> DeliveryRecord | None:
        """The stored delivery this execution runs (None for one that is gone)."""
        if not row.delivery_id:
            return None
        try:
            return deliveries_sql.get(self.db, row.delivery_id)
        except NotFound:
            return None

    def _context(
        self,
        row: ExecutionRow,
        trigger: CompiledTrigger,
        delivery: DeliveryRecord | None,
        output: OutputBuffer,
        cancelled: threading.Event,
        secrets: list[str],
    ) -> RunContext:
        body, headers, query, content_type = b"", {}, {}, None
        method, remote_addr = "POST", None
        if delivery is not None:
            body, headers, query = delivery.body, delivery.headers, delivery.query
            content_type, method = delivery.content_type, delivery.method or "POST"
            remote_addr = delivery.report.get("remote_addr")
            kept = delivery.credentials or {}  # what the stored copy shows redacted
            headers = headers | kept.get("headers", {})
            query = query | kept.get("query", {})
        try:
            parsed: Any = parse_for_trigger(body, content_type, trigger.document.payload).value
        except Exception:
            parsed = body.decode("utf-8", errors="replace")
        return RunContext(
            execution_id=row.id,
            delivery_id=row.delivery_id,
            trigger=trigger.name,
            request_id=row.request_id,
            raw_body=body,
            content_type=content_type,
            template_context=template_context(
                body=parsed,
                headers=headers,
                query=query,
                trigger=trigger.name,
                delivery_id=row.delivery_id or "",
                method=method,
                remote_addr=remote_addr,
                raw_body=body,
            ),
            secrets=secrets,
            output=output,
            settings=self.settings,
            breakers=self.breakers,
            cancelled=cancelled,
        )

    def _record(
        self,
        row: ExecutionRow,
        trigger: CompiledTrigger,
        result: RunResult,
        output: OutputBuffer,
        secrets: list[str],
    ) -> None:
        finished_at = utc_now_iso()
        report = dict(row.report)  # the row as claimed: nothing else writes it meanwhile
        report.update(
            attempt=row.attempt,
            started_at=row.started_at,
            finished_at=finished_at,
            queue_wait_ms=ms_between(row.created_at, row.started_at),
            duration_ms=ms_between(row.started_at, finished_at),
            status=result.status,
            exit_code=result.exit_code,
            output_bytes=output.bytes,
            output_truncated=output.dropped_bytes > 0,
            action=result.details,
        )

        outcome: dict[str, Any] = {
            "token": self.token,
            "status": result.status,
            "exit_code": result.exit_code,
            "error": result.error,
            "report": report,
        }

        def finish(conn: Connection) -> tuple[bool, str | None]:
            if not queue.finish(conn, row.id, **outcome):
                return False, None
            retry = schedule_retry(
                conn, row, trigger.document.retry, result.status, retryable=result.retryable
            )
            return True, retry

        # An outcome that schedules a retry writes both in one transaction (shared with
        # concurrent outcomes on SQLite); most have none and are one statement (alone on
        # PostgreSQL, in the group commit on SQLite: queue.finish_alone).
        policy = trigger.document.retry
        if may_follow(policy, row.attempt, result.status, result.retryable):
            finished, retry_id = self.db.write_grouped(finish)
        else:
            finished, retry_id = queue.finish_alone(self.db, row.id, **outcome), None
        self.notifier.notify(row.id)
        self.notifier.notify(ALL)
        self._log_outcome(row.id, result, report, retry_id, finished, secrets)
        if finished:
            self.alerts.finished(row, trigger.document, result, report, secrets)

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
        _breadcrumb(result.status, {"exit_code": result.exit_code})
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


def _credential_values(kept: dict[str, dict[str, Any]]) -> list[str]:
    values: list[str] = []
    for group in kept.values():
        for value in group.values():
            values += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return [value for value in values if value]


def until_stored(write: Callable[[], None], give_up: Callable[[], bool], what: str) -> None:
    """Run ``write`` until it succeeds, backing off while the store fails.

    The outcome of a run is held in memory meanwhile, and the execution stays in
    this process's running set, so its lease keeps being renewed and nobody else
    reaps it. Each try is one whole transaction and the final write is fenced by
    the claim token, so the outcome is recorded exactly once. Only shutdown
    (``give_up``) stops the retries; the lease reaper then reconciles the row.
    """
    delay, failures = RETRY_START_SECONDS, 0
    while True:
        try:
            write()
        except Exception:
            failures += 1
            if give_up():
                log.error("could not store %s before shutdown", what, exc_info=True)
                raise
            if failures == 1:
                log.warning("could not store %s; retrying until the store is back", what)
            time.sleep(delay)
            delay = min(delay * 2, RETRY_CAP_SECONDS)
            continue
        if failures:
            log.info("stored %s after %d failed attempts", what, failures)
        return


def _breadcrumb(stage: str, data: dict[str, Any], at: str | None = None) -> None:
    """One stage of the execution, for the Sentry events raised in its scope."""
    crumb: dict[str, Any] = {"category": "execution", "message": stage, "level": "info"}
    crumb["data"] = {k: v for k, v in data.items() if v is not None}
    if at:
        crumb["timestamp"] = parse_iso(at)
    sentry_sdk.add_breadcrumb(crumb)


def _ingest_breadcrumbs(report: dict[str, Any], row: ExecutionRow) -> None:
    """The stages the webhook went through before this run, from its delivery's report."""
    if not sentry_sdk.get_client().is_active():
        return  # nothing would keep them: skip building them
    received_at = report.get("received_at")
    if received_at:  # the ingest stages took milliseconds: all stamped on arrival
        _breadcrumb("received", {"bytes": (report.get("body") or {}).get("bytes")}, received_at)
        auth = report.get("auth")
        if auth:
            _breadcrumb("verified", {"scheme": auth.get("scheme")}, received_at)
        dedup = report.get("dedup") or {}
        if dedup.get("key"):
            _breadcrumb("deduped", {"source": dedup.get("source")}, received_at)
    _breadcrumb("queued", {"attempt": row.attempt}, row.created_at)
