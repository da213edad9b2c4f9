"""One circuit breaker per outbound destination (``scheme://host:port``).

* pybreaker breakers, created lazily in the app's :class:`BreakerRegistry` with
  ``BREAKER_FAIL_MAX`` / ``BREAKER_RESET_SECONDS``; state is per process.
* The caller says what counts as a failure (``guard(..., failures=)``): the HTTP
  runner counts connection errors, timeouts, 5xx and 429. A return is a
  success; any other exception is not counted either way.
* ``guard`` does the work **outside** pybreaker's lock (``CircuitBreaker.call``
  holds one lock per breaker for the whole call, which would serialise every
  forward to a host): it fails fast with ``CircuitBreakerError`` while open,
  runs the work, then replays the outcome through ``call`` so pybreaker's
  state machine (open -> half-open after the timeout -> closed/open) and
  listeners apply. Concurrent trial calls while half-open may all go through.
* A state change is logged at WARNING (``destination``, ``from_state``,
  ``to_state``), sent to Sentry as a warning (no-op without Sentry) and, with
  ``ALERT_WEBHOOK_URL``, POSTed as JSON from a daemon thread (5 s timeout;
  private addresses allowed: operator config; errors logged, never raised).
  Never logged: the alert URL, request headers or bodies.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pybreaker
import sentry_sdk
from urllib3.util import parse_url

from app.clock import utc_now_iso
from app.config import Settings
from app.context import start_thread
from app.outbound import client as outbound

T = TypeVar("T")
logger = logging.getLogger(__name__)
ALERT_TIMEOUT_SECONDS = 5.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


def destination_of(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, default port filled in."""
    parsed = parse_url(url)
    scheme = (parsed.scheme or "http").lower()
    return f"{scheme}://{(parsed.host or '').lower()}:{parsed.port or _DEFAULT_PORTS.get(scheme)}"


class DestinationBreaker(pybreaker.CircuitBreaker):
    """A pybreaker breaker for one destination, plus :meth:`guard`."""

    def __init__(
        self,
        destination: str,
        fail_max: int,
        reset_timeout: float,
        listener: pybreaker.CircuitBreakerListener,
    ) -> None:
        self.storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        super().__init__(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            listeners=[listener],
            state_storage=self.storage,
            name=destination,
            throw_new_error_on_trip=False,  # the caller sees the error that tripped it
        )
        self.destination = destination

    def guard(self, work: Callable[[], T], failures: tuple[type[BaseException], ...]) -> T:
        """Run ``work`` unless open; record a return as success, ``failures`` as failure."""
        opened_at = self.storage.opened_at
        if self.current_state == pybreaker.STATE_OPEN and opened_at is not None:
            retry_at = opened_at + timedelta(seconds=self.reset_timeout)
            if datetime.now(UTC) < retry_at:
                raise pybreaker.CircuitBreakerError(
                    f"circuit open for {self.destination} until {retry_at.isoformat()}"
                )
        try:
            result = work()
        except failures as exc:
            self._record(exc)
            raise
        self._record(None)
        return result

    def _record(self, error: BaseException | None) -> None:
        def outcome() -> None:
            if error is not None:
                raise error

        try:
            self.call(outcome)
        except pybreaker.CircuitBreakerError:
            pass  # reopened meanwhile by a concurrent call; its outcome stands
        except BaseException as exc:
            if exc is not error:
                raise


class AlertingListener(pybreaker.CircuitBreakerListener):
    """Logs, reports to Sentry and posts an alert on every state change."""

    def __init__(self, registry: BreakerRegistry) -> None:
        self.registry = registry

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        destination = str(cb.name)
        before = old_state.name if old_state is not None else None
        after = str(new_state.name)
        extra = {"destination": destination, "from_state": before, "to_state": after}
        logger.warning("circuit breaker for %s: %s -> %s", destination, before, after, extra=extra)
        sentry_sdk.capture_message(
            f"circuit breaker {after} for {destination}",
            level="warning",
            tags={"destination": destination, "breaker_from": str(before), "breaker_to": after},
        )
        for hook in list(self.registry.state_hooks):
            try:
                hook(destination, after)
            except Exception:
                logger.exception("breaker state hook failed")
        url = self.registry.alert_webhook_url
        if url:
            event: dict[str, str | None] = {"event": "breaker_state_changed"}
            event.update(destination=destination, at=utc_now_iso(), to=after)
            event["from"] = before
            self.registry.spawn(lambda: _post_alert(url, event))


def _post_alert(url: str, event: dict[str, str | None]) -> None:
    try:
        response = outbound.request(
            "POST",
            url,
            headers={"Content-Type": "application/json", "User-Agent": "Hookrunner"},
            body=json.dumps(event).encode(),
            timeout=ALERT_TIMEOUT_SECONDS,
            max_response_bytes=1024,
            allow_private=True,
        )
    except Exception as exc:
        logger.warning("breaker alert not delivered: %s", type(exc).__name__)
        return
    if not 200 <= response.status < 300:
        logger.warning("breaker alert answered HTTP %s", response.status)


class BreakerRegistry:
    """One app's breakers by destination; settings come from :meth:`configure`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, DestinationBreaker] = {}
        # Separate lock: listeners spawn alert threads while pybreaker holds its own lock.
        self._threads_lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._listener = AlertingListener(self)
        self.fail_max = Settings.breaker_fail_max
        self.reset_seconds = Settings.breaker_reset_seconds
        self.alert_webhook_url: str | None = None
        # Called with (destination, new_state) on every change, e.g. to persist it.
        self.state_hooks: list[Callable[[str, str], None]] = []

    def configure(self, settings: Settings) -> None:
        """Apply thresholds and alert URL, to existing breakers too (cheap; call freely)."""
        with self._lock:
            self.alert_webhook_url = settings.alert_webhook_url
            self.fail_max = settings.breaker_fail_max
            self.reset_seconds = settings.breaker_reset_seconds
            for breaker in self._breakers.values():
                breaker.fail_max, breaker.reset_timeout = self.fail_max, self.reset_seconds

    def get(self, destination: str) -> DestinationBreaker:
        with self._lock:
            breaker = self._breakers.get(destination)
            if breaker is None:
                breaker = DestinationBreaker(
                    destination, self.fail_max, self.reset_seconds, self._listener
                )
                self._breakers[destination] = breaker
            return breaker

    def states(self) -> dict[str, str]:
        """``{destination: "closed" | "open" | "half-open"}``."""
        with self._lock:
            breakers = list(self._breakers.items())
        return {destination: str(b.current_state) for destination, b in breakers}

    def spawn(self, work: Callable[[], None]) -> None:
        """Run ``work`` in a daemon thread that keeps the caller's context variables."""

        def run() -> None:
            try:
                work()
            finally:
                with self._threads_lock:
                    self._threads.discard(thread)

        thread = start_thread(run, start=False)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def drain(self, timeout: float = ALERT_TIMEOUT_SECONDS + 1) -> None:
        """Wait for alert posts in flight (tests, shutdown)."""
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def reset(self) -> None:
        """Forget every breaker and restore default settings (tests)."""
        self.drain()
        with self._lock:
            self._breakers.clear()
            self.fail_max = Settings.breaker_fail_max
            self.reset_seconds = Settings.breaker_reset_seconds
            self.alert_webhook_url = None
            self.state_hooks.clear()
