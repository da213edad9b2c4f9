"""Failure notifications: a signed JSON event when an execution ends badly.

Which executions: a trigger's ``notify`` decides (``on``: the final statuses that
notify, default ``failed`` and ``timed_out``; ``url``: where, default
``ALERT_WEBHOOK_URL``); a trigger without ``notify`` notifies ``ALERT_WEBHOOK_URL``,
when set, of ``failed`` and ``timed_out``. ``notify: {"on": []}`` silences one.
Outcomes recorded by the run itself notify, and so does an execution the lease
reaper ends ``interrupted`` after its process or host died (the reaping
process sends it; no stderr tail is read for it then beyond what was stored).

Contract:

* **Off the critical path.** :meth:`FailureAlerts.finished` is called after the
  outcome is committed; it returns at once and the post happens in a daemon
  thread (a greenlet under gevent) that keeps the execution's context (request
  id, execution id in its log lines). Nothing here can fail or delay the
  execution: every error is caught, logged and counted.
* **The event** (Standard Webhooks conventions): ``{"type": "execution.<status>",
  "timestamp", "data": {execution_id, trigger, status, exit_code, error, attempt,
  delivery_id, request_id, started_at, finished_at, stderr_tail}}``; the stderr
  tail is the last :data:`STDERR_TAIL_LINES` lines with the trigger's secrets
  masked, like the error text. Headers ``webhook-id`` (``ntf_<execution id>``:
  the same on every attempt, so receivers can deduplicate), ``webhook-timestamp``
  and, with ``notify.signing_secret`` (else ``ALERT_SIGNING_SECRET``),
  ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``, secrets as for forwards).
* **Like a forward**: sent through :mod:`app.outbound.client` (non-global
  destinations refused unless ``ALLOW_PRIVATE_TARGETS=1``, no redirects, timeout)
  and the destination's circuit breaker.
* **Delivery**: up to :data:`ATTEMPTS` tries, :data:`RETRY_DELAYS` apart, while
  the failure is temporary (connection error, timeout, 5xx, 429, open breaker);
  2xx is delivered. Each notification ends counted in
  ``hookrunner_failure_notifications_total{outcome="delivered"|"failed"}`` and a
  failed one is logged at WARNING with the reason - never the URL, headers or body.
  Posts still in flight when the process exits are lost (the execution's record
  is not: ``GET /admin/executions?status=failed`` lists them all).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import pybreaker
from prometheus_client import Counter
from urllib3.exceptions import HTTPError

from app.clock import utc_now_iso
from app.config import Settings
from app.context import start_thread
from app.execution.runners.base import RunResult
from app.execution.runners.http import sign
from app.outbound import client as outbound
from app.outbound.breakers import BreakerRegistry, destination_of
from app.store import Database, execution_logs
from app.store.executions import ExecutionRow
from app.triggers.schema import TriggerDocument
from app.triggers.templates import mask_secrets

log = logging.getLogger(__name__)

ATTEMPTS = 3
RETRY_DELAYS = (2.0, 10.0)
TIMEOUT_SECONDS = 10.0
STDERR_TAIL_LINES = 20
DEFAULT_ON = ("failed", "timed_out")

# Registered in no registry: app.routes.metrics exposes it (or every worker's copy).
NOTIFICATIONS = Counter(
    "hookrunner_failure_notifications",
    "Failure notifications by outcome (delivered, or failed after its attempts).",
    labelnames=("outcome",),
    registry=None,
)


@dataclass(frozen=True)
class Target:
    url: str
    secret: str | None


class _Temporary(Exception):
    """A failure worth another attempt."""


class _Permanent(Exception):
    """A failure another attempt would not fix (refused address, 3xx, 4xx)."""


class _Unhealthy(Exception):
    """A 5xx or 429 answer: raised inside the breaker so that it counts as a failure."""


def target_for(document: TriggerDocument, status: str, settings: Settings) -> Target | None:
    """Where a ``status`` outcome of this trigger is notified (None: nowhere)."""
    notify = document.notify
    on = DEFAULT_ON if notify is None else tuple(notify.on)
    url = (notify.url if notify is not None else None) or settings.alert_webhook_url
    if status not in on or not url:
        return None
    secret = notify.signing_secret if notify is not None else None
    return Target(url, secret or settings.alert_signing_secret)


def event_for(
    row: ExecutionRow, result: RunResult, report: dict[str, Any], stderr: list[str]
) -> dict[str, Any]:
    return {
        "type": f"execution.{result.status}",
        "timestamp": utc_now_iso(),
        "data": {
            "execution_id": row.id,
            "trigger": row.trigger,
            "status": result.status,
            "exit_code": result.exit_code,
            "error": result.error,
            "attempt": row.attempt,
            "delivery_id": row.delivery_id,
            "request_id": row.request_id,
            "started_at": report.get("started_at"),
            "finished_at": report.get("finished_at"),
            "stderr_tail": stderr,
        },
    }


class FailureAlerts:
    """Posts failure notifications for one engine's executions (see the module contract)."""

    def __init__(self, db: Database, settings: Settings, breakers: BreakerRegistry) -> None:
        self.db = db
        self.settings = settings
        self.breakers = breakers
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def finished(
        self,
        row: ExecutionRow,
        document: TriggerDocument,
        result: RunResult,
        report: dict[str, Any],
        secrets: list[str],
    ) -> None:
        """Start notifying of this recorded outcome if the trigger asks for it; never raises."""
        try:
            target = target_for(document, result.status, self.settings)
            if target is None:
                return
            self._spawn(lambda: self._notify(target, row, result, report, secrets))
        except Exception:
            log.exception("failure notification not started")

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for notifications in flight (tests, shutdown)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _spawn(self, work: Any) -> None:
        def run() -> None:
            try:
                work()
            finally:
                with self._lock:
                    self._threads.discard(thread)

        thread = start_thread(run, start=False, name="hookrunner-alert")
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _notify(
        self,
        target: Target,
        row: ExecutionRow,
        result: RunResult,
        report: dict[str, Any],
        secrets: list[str],
    ) -> None:
        try:
            stderr = execution_logs.tail(self.db, row.id, "stderr", STDERR_TAIL_LINES)
        except Exception:
            stderr = []  # the event still goes out, without the tail
        event = mask_secrets(event_for(row, result, report, stderr), secrets)
        body = json.dumps(event).encode()
        reason = "no attempt made"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._post(target, f"ntf_{row.id}", body)
            except _Temporary as exc:
                reason = str(exc)
                if attempt < ATTEMPTS:
                    time.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1])
                    continue
            except Exception as exc:
                reason = str(exc) if isinstance(exc, _Permanent) else type(exc).__name__
            else:
                NOTIFICATIONS.labels(outcome="delivered").inc()
                log.info("failure notification delivered", extra={"attempts": attempt})
                return
            break
        NOTIFICATIONS.labels(outcome="failed").inc()
        log.warning(
            "failure notification not delivered: %s",
            mask_secrets(reason, secrets),
            extra={"attempts": attempt},
        )

    def _post(self, target: Target, message_id: str, body: bytes) -> None:
        """One attempt; raises _Temporary or _Permanent on failure."""
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "Hookrunner"}
        headers.update({"webhook-id": message_id, "webhook-timestamp": str(timestamp)})
        if target.secret:
            headers["webhook-signature"] = sign(target.secret, message_id, timestamp, body)

        def send() -> outbound.OutboundResponse:
            response = outbound.request(
                "POST",
                target.url,
                headers=headers,
                body=body,
                timeout=TIMEOUT_SECONDS,
                max_response_bytes=1024,
                allow_private=self.settings.allow_private_targets,
            )
            if response.status >= 500 or response.status == 429:
                raise _Unhealthy(f"HTTP {response.status}")
            return response

        breaker = self.breakers.get(destination_of(target.url))
        try:
            response = breaker.guard(send, failures=(HTTPError, OSError, _Unhealthy))
        except outbound.PrivateAddressRefused as exc:
            raise _Permanent(f"refused: {exc.address} is not a global address") from None
        except _Unhealthy as exc:
            raise _Temporary(str(exc)) from None
        except pybreaker.CircuitBreakerError:
            raise _Temporary("circuit breaker open") from None
        except (HTTPError, OSError) as exc:
            raise _Temporary(type(exc).__name__) from None
        if not 200 <= response.status < 300:
            raise _Permanent(f"HTTP {response.status}")
