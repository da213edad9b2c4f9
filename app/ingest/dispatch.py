"""Steps 4-8 of the request path: parse, filter, deduplicate, record, answer.

:meth:`ExecutionService.dispatch_webhook_event` is the single entry point for
the webhook route, delivery replay and (without writing) the dry run. Its
write claims the dedup key and inserts the delivery and the queued execution
together in one transaction (:meth:`app.store.base.Database.ingest`; on SQLite
shared with other requests arriving at the same moment, each in its own
savepoint) - so a 2xx is
only ever sent for a webhook that is durably recorded, and two concurrent
copies cannot both start an execution. Nothing that can yield runs inside it.
With ``on_busy: queue`` the common outcome (a new key, room in the queue) is
first offered to :func:`app.store.ingest_records.record_accepted`, which a
store may write as one statement (PostgreSQL); when it writes nothing, the
general transaction decides as before.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jmespath.exceptions import JMESPathError

from app.clock import utc_now_iso
from app.config import Settings
from app.errors import SignatureInvalid, TriggerBusy
from app.ingest import auth_failures, dedup, handshake, rules
from app.ingest.inbound import InboundRequest, ParsedBody, canonical_json
from app.ingest.payloads import parse_for_trigger
from app.live.notifier import ALL, CANCEL, WORK, Notifier
from app.live.streams import stream_url
from app.redaction import redact_headers, redact_query, redacted_values
from app.store import Connection, Database, dedup_keys, ingest_records
from app.store import deliveries as deliveries_sql
from app.store import execution_queue as queue
from app.store import executions as executions_sql
from app.store.executions import ExecutionRow
from app.store.row_ids import new_row_id
from app.triggers.registry import CompiledTrigger

if TYPE_CHECKING:
    from app.execution.engine import Engine

_TRACE_LIMIT = 500  # characters of a filter result kept in the trace
BUSY_RETRY_AFTER_SECONDS = 30
_REASONS = {"ignored": "filter_mismatch", "handshake": "url_verification"}
RULES_MISMATCH = "rules_mismatch"


@dataclass(frozen=True)
class Evaluation:
    """What the request path decided before writing anything."""

    body: ParsedBody
    context: dict[str, Any]
    filter_trace: dict[str, Any] | None
    matched: bool
    dedup: dedup.DedupDecision
    challenge: str | None = None  # a sender handshake to answer instead of dispatching
    rules: rules.Outcome = "matched"


@dataclass(frozen=True)
class _Recorded:
    """What the ingest transaction decided for one request."""

    duplicate_of: str | None = None
    busy: TriggerBusy | None = None
    superseded: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DispatchResult:
    status: str  # accepted | duplicate | ignored | handshake
    delivery_id: str
    execution_id: str | None
    reason: str | None = None
    challenge: str | None = None

    def payload(self, request_id: str | None) -> dict[str, Any]:
        """The JSON answer for this outcome (webhooks, replay): one shape everywhere.

        A handshake is answered the way its sender requires: ``{"challenge": ...}``.
        """
        if self.status == "handshake":
            return {"challenge": self.challenge}
        answer: dict[str, Any] = {"status": self.status, "delivery_id": self.delivery_id}
        if self.status == "ignored":
            return answer | {"reason": self.reason, "request_id": request_id}
        answer |= {"execution_id": self.execution_id, "request_id": request_id}
        if self.status == "accepted":
            answer["stream_url"] = stream_url(str(self.execution_id))
        return answer


def _filter(
    trigger: CompiledTrigger, context: dict[str, Any]
) -> tuple[bool, dict[str, Any] | None]:
    if trigger.filter is None:
        return True, None
    trace: dict[str, Any] = {"expression": trigger.document.filter}
    try:
        result = trigger.filter.search(context)
    except JMESPathError as exc:
        trace.update(matched=False, error=str(exc))
        return False, trace
    # JMESPath truthiness: null, false, "", [] and {} are false; 0 is true.
    matched = not (result is None or result is False or result in ("", [], {}))
    trace.update(matched=matched, result=canonical_json(result)[:_TRACE_LIMIT])
    return matched, trace


def _admission(
    conn: Connection, dialect: str, trigger: CompiledTrigger, queued: int | None
) -> TriggerBusy | None:
    """Whether the trigger takes another execution now (inside the ingest transaction).

    Decided under the same per-trigger serialisation as claims (see
    :func:`app.store.execution_queue.lock_trigger`), so limits hold across hosts.
    ``queued`` is the trigger's queue depth, read (and locked) at the start of the
    transaction when ``on_busy`` is ``queue``.
    """
    policy = trigger.document.concurrency
    if policy.on_busy == "reject":
        queue.lock_trigger(conn, dialect, trigger.name)
        active = queue.count_at_most(conn, trigger.name, ("running", "queued"), policy.max)
        if active >= policy.max:
            return TriggerBusy(
                f"all {policy.max} allowed executions are taken",
                code="trigger_busy",
                retry_after=BUSY_RETRY_AFTER_SECONDS,
            )
    elif policy.on_busy == "queue" and queued is not None and queued >= policy.queue_max:
        return TriggerBusy(
            f"the queue is full (queue_max {policy.queue_max})",
            code="queue_full",
            retry_after=BUSY_RETRY_AFTER_SECONDS,
        )
    return None


def _stage(request_started: float | None) -> float | None:
    if request_started is None:
        return None
    return round((time.perf_counter() - request_started) * 1000, 3)


class ExecutionService:
    def __init__(
        self, db: Database, settings: Settings, notifier: Notifier, engine: Engine | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.notifier = notifier
        self.engine = engine

    def evaluate(self, trigger: CompiledTrigger, request: InboundRequest) -> Evaluation:
        """Parse, filter and choose the dedup key; raises InvalidJson. Writes nothing."""
        body = parse_for_trigger(
            request.body,
            request.content_type,
            trigger.document.payload,
            require_json=trigger.document.require_json,
        )
        context = {"body": body.value, "headers": request.headers, "query": request.query}
        challenge = handshake.slack_challenge(trigger.auth.scheme, body)
        if challenge is not None:
            no_dedup = dedup.DedupDecision(None, 0, "handshake")
            return Evaluation(body, context, None, False, no_dedup, challenge=challenge)
        outcome = rules.evaluate(
            trigger.document.rules,
            rules.RuleInput(
                method=request.method,
                remote_addr=request.remote_addr,
                headers=request.headers,
                query=request.query,
                body=body.value,
                raw=request.body,
            ),
        )
        matched, trace = _filter(trigger, context)
        decision = dedup.decide(trigger, request, body, context, self.settings)
        return Evaluation(
            body, context, trace, matched and outcome == "matched", decision, rules=outcome
        )

    def dispatch_webhook_event(
        self,
        trigger: CompiledTrigger,
        request: InboundRequest,
        *,
        request_started: float | None = None,
        bypass_dedup: bool = False,
    ) -> DispatchResult:
        """Evaluate the request and record its outcome durably (steps 4-8)."""
        evaluation = self.evaluate(trigger, request)
        delivery_id = new_row_id()
        report = self._report(trigger, request, evaluation, _stage(request_started))
        delivery = functools.partial(self._delivery, trigger, request, delivery_id)
        if evaluation.challenge is not None:
            answered = delivery("handshake", None, None, report)
            self.db.ingest(lambda conn: deliveries_sql.insert(conn, answered))
            return DispatchResult("handshake", delivery_id, None, challenge=evaluation.challenge)
        if evaluation.rules == "signature_invalid":
            auth_failures.record(trigger.name, SignatureInvalid.code)
            raise SignatureInvalid("The request does not satisfy the trigger's signature rule.")
        if not evaluation.matched:
            reason = RULES_MISMATCH if evaluation.rules == "mismatch" else "filter_mismatch"
            noted = report if reason == "filter_mismatch" else {**report, "rejected": reason}
            ignored = delivery("ignored", None, None, noted)
            self.db.ingest(lambda conn: deliveries_sql.insert(conn, ignored))
            return DispatchResult("ignored", delivery_id, None, reason=reason)
        execution_id = new_row_id()
        key = None if bypass_dedup else evaluation.dedup.key
        now = utc_now_iso()
        expires_at = utc_now_iso(evaluation.dedup.window_seconds)

        def record(conn: Connection) -> _Recorded:
            # The queue depth is read first: its row lock comes before the dedup key's, in
            # the order the one-statement path takes them, so the two never deadlock.
            queued = None
            if trigger.document.concurrency.on_busy == "queue":
                queued = queue.queued_count(conn, trigger.name, self.db.dialect)
            if key is not None:
                original = dedup_keys.claim(
                    conn,
                    trigger=trigger.name,
                    key=key,
                    delivery_id=delivery_id,
                    execution_id=execution_id,
                    now=now,
                    expires_at=expires_at,
                )
                if original is not None:
                    deliveries_sql.insert(
                        conn,
                        delivery("duplicate", key, original, report),
                    )
                    return _Recorded(duplicate_of=original)
            busy = _admission(conn, self.db.dialect, trigger, queued)
            if busy is not None:
                # Refused work must not hold the key: the sender's retry has to run.
                if key is not None:
                    dedup_keys.release(conn, trigger.name, key, execution_id)
                rejected = {**report, "rejected": busy.code}
                deliveries_sql.insert(
                    conn,
                    delivery("rejected", None, None, rejected),
                )
                return _Recorded(busy=busy)
            superseded = []
            if trigger.document.concurrency.on_busy == "replace":
                queue.lock_trigger(conn, self.db.dialect, trigger.name)
                superseded = queue.supersede(conn, trigger.name, now)
            deliveries_sql.insert(
                conn,
                delivery("accepted", key, execution_id, report),
            )
            executions_sql.insert_queued(
                conn,
                execution_id=execution_id,
                trigger=trigger.name,
                delivery_id=delivery_id,
                request_id=request.request_id,
                created_at=now,
                report={},  # the ingest part of the report stays on the delivery
            )
            return _Recorded(superseded=superseded)

        if trigger.document.concurrency.on_busy == "queue" and ingest_records.record_accepted(
            self.db,
            delivery=delivery("accepted", key, execution_id, report),
            execution_id=execution_id,
            created_at=now,
            expires_at=expires_at,
            queue_max=trigger.document.concurrency.queue_max,
        ):
            self._after_commit([])
            return DispatchResult("accepted", delivery_id, execution_id)
        recorded = self.db.ingest(record)
        if recorded.duplicate_of is not None:
            return DispatchResult("duplicate", delivery_id, recorded.duplicate_of)
        if recorded.busy is not None:
            raise recorded.busy
        self._after_commit(recorded.superseded)
        return DispatchResult("accepted", delivery_id, execution_id)

    def rerun(self, original: ExecutionRow, request_id: str | None) -> str:
        """Queue a new execution of the same delivery (``rerun_of`` recorded)."""
        execution_id = original.id
        new_id = new_row_id()
        with self.db.write() as conn:
            executions_sql.insert_queued(
                conn,
                execution_id=new_id,
                trigger=original.trigger,
                delivery_id=original.delivery_id,
                request_id=request_id,
                created_at=utc_now_iso(),
                report={"rerun_of": execution_id},
                rerun_of=execution_id,
            )
        self._after_commit([])
        return new_id

    def _after_commit(self, superseded: list[str]) -> None:
        """Wake whoever can act on the new rows: here at once, elsewhere by notification."""
        self.notifier.notify(ALL)
        if superseded:
            self.notifier.notify(CANCEL)
        if self.engine is not None:
            for running_id in superseded:
                self.engine.cancel_local(running_id)
            self.engine.wake()
        if self.notifier.backend is not None:
            self.notifier.backend.publish(WORK)

    @staticmethod
    def _delivery(
        trigger: CompiledTrigger,
        request: InboundRequest,
        delivery_id: str,
        outcome: str,
        key: str | None,
        execution_id: str | None,
        report: dict[str, Any],
    ) -> deliveries_sql.DeliveryRecord:
        return deliveries_sql.DeliveryRecord(
            id=delivery_id,
            trigger=trigger.name,
            received_at=request.received_at,
            request_id=request.request_id,
            outcome=outcome,
            reason=report.get("rejected") or _REASONS.get(outcome),
            dedup_key=key,
            execution_id=execution_id,
            replay_of=request.replay_of,
            method=request.method,
            content_type=request.content_type,
            query=redact_query(request.query),
            headers=redact_headers(request.headers, trigger.credential_headers),
            body=request.body,
            report=report,
            credentials=(
                redacted_values(request.headers, request.query, trigger.credential_headers)
                if trigger.templates_read_request and outcome == "accepted"
                else None
            ),
        )

    @staticmethod
    def _report(
        trigger: CompiledTrigger,
        request: InboundRequest,
        evaluation: Evaluation,
        evaluated_ms: float | None,
    ) -> dict[str, Any]:
        verification = request.verification
        return {
            "received_at": request.received_at,
            "evaluated_ms": evaluated_ms,
            "auth": None
            if verification is None
            else {"scheme": verification.scheme, "secret_index": verification.secret_index},
            "body": {"kind": evaluation.body.kind, "bytes": len(request.body)},
            "filter": evaluation.filter_trace,
            "dedup": {
                "key": evaluation.dedup.key,
                "source": evaluation.dedup.source,
                "window_seconds": evaluation.dedup.window_seconds,
            },
            "replay_of": request.replay_of,
            "rules": evaluation.rules,
            "remote_addr": request.remote_addr,
        }
