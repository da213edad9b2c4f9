"""Webhook authentication failures: counted for ``/metrics`` and logged, bounded.

A request that fails its signature check is answered 401 and not stored (one
refused by ``auth.allow_ips`` is answered 403). This module makes such failures
observable without letting a flood of them cost disk:

* :data:`AUTH_FAILURES` counts them as ``hookrunner_auth_failures_total{trigger,
  reason}`` (``reason`` is the answer's code: ``signature_missing``,
  ``signature_invalid``, ``timestamp_out_of_tolerance`` or ``ip_not_allowed``;
  ``trigger`` is always an existing trigger, unknown names are 404 before
  authentication). It is a
  prometheus-client counter: under Gunicorn every worker writes it to its own
  file in ``PROMETHEUS_MULTIPROC_DIR`` (``gunicorn.conf.py`` creates and wipes
  that directory) and a scrape of any worker sums all of them, with no ``pid``
  label; in a single process it is an ordinary in-memory counter. Like any
  Prometheus counter it restarts at zero with the server, and each host counts
  its own requests.
* :func:`record` logs one WARNING line per failure with ``trigger``, ``reason``
  and the request id - never a header value, signature or secret - at most
  :data:`LOG_LINES_PER_WINDOW` lines per :data:`LOG_WINDOW_SECONDS` per process;
  the next line after a suppressed stretch says how many were left out
  (``suppressed``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Counter

log = logging.getLogger(__name__)

LOG_LINES_PER_WINDOW = 20
LOG_WINDOW_SECONDS = 60.0

# Registered in no registry: app.routes.metrics exposes it (or every worker's copy).
AUTH_FAILURES = Counter(
    "hookrunner_auth_failures",
    "Webhook requests refused by the signature check or the IP allowlist (not stored).",
    labelnames=("trigger", "reason"),
    registry=None,
)


class LineBudget:
    """At most ``lines`` allowed per fixed window of ``seconds``; counts the refused ones."""

    def __init__(
        self, lines: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lines = lines
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._used = 0
        self._suppressed = 0

    def take(self) -> int | None:
        """None when over budget; else how many were refused since the last allowed one."""
        with self._lock:
            now = self._clock()
            if now - self._window_start >= self._seconds:
                self._window_start, self._used = now, 0
            if self._used >= self._lines:
                self._suppressed += 1
                return None
            self._used += 1
            suppressed, self._suppressed = self._suppressed, 0
            return suppressed


_budget = LineBudget(LOG_LINES_PER_WINDOW, LOG_WINDOW_SECONDS)


def record(trigger: str, reason: str, budget: LineBudget | None = None) -> None:
    """Count one failure and log it if the line budget allows (request id from context)."""
    AUTH_FAILURES.labels(trigger=trigger, reason=reason).inc()
    suppressed = (budget or _budget).take()
    if suppressed is None:
        return
    log.warning(
        "webhook authentication failed",
        extra={"trigger": trigger, "reason": reason, "suppressed": suppressed},
    )
