"""The sender thread of a notifier backend: published topics leave in batches.

Both notifier backends (PostgreSQL's ``NOTIFY``, see
:mod:`app.store.postgres.notify`; the SQLite doorbell's datagrams, see
:mod:`app.store.sqlite.doorbell`) publish through a :class:`TopicPublisher`:
:meth:`~TopicPublisher.publish` only records the topic and never blocks; one
sender thread (a greenlet under gevent) hands everything recorded meanwhile to
the backend's ``send`` in one call, each topic once, in the order first
published.

Every send wakes other processes (and on PostgreSQL costs a round trip and
wakes every listening backend), and a busy engine publishes several topics per
execution (its status, the feed, its output). So while a process keeps
publishing, at most one batch leaves per ``min_interval`` seconds: a topic
published after a quiet spell goes at once; one published right after a send
waits at most ``min_interval``, together with whatever else comes meanwhile.
A send that fails is logged and the sender pauses :data:`FAILURE_PAUSE_SECONDS`
(less if stopped) before the next: notifications are hints, followers poll too.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from app.context import start_thread

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 0.005
FAILURE_PAUSE_SECONDS = 0.5  # after a failed send, e.g. while the store is down


class TopicPublisher:
    def __init__(
        self,
        send: Callable[[list[str]], None],
        *,
        name: str,
        min_interval: float = MIN_INTERVAL_SECONDS,
    ) -> None:
        """``send(topics)`` delivers one batch; an exception it raises is logged, then paused on."""
        self._send = send
        self._name = name
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._pending: dict[str, None] = {}
        self._kick = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches_sent = 0  # how many times ``send`` was called (tests, diagnostics)

    def start(self) -> None:
        if self._thread is None:
            self._thread = start_thread(self._loop, fresh=True, name=self._name)

    def publish(self, topic: str) -> None:
        """Send ``topic`` with the next batch; returns at once."""
        with self._lock:
            self._pending[topic] = None
        self._kick.set()

    def stop(self, timeout: float = 3.0) -> None:
        """Send what is still pending, then end the sender thread (idempotent)."""
        self._stopping.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        sent_at = -math.inf
        while True:
            self._kick.wait(1.0)
            early = sent_at + self._min_interval - time.monotonic()
            if early > 0:
                self._stopping.wait(early)  # gather the rest of the burst; stop() cuts it short
            self._kick.clear()
            stopping = self._stopping.is_set()  # read first: what came before is sent below
            with self._lock:
                topics, self._pending = list(self._pending), {}
            if topics:
                try:
                    self._send(topics)
                except Exception:  # a hint only: followers poll as well
                    log.warning("notifications not sent", exc_info=True)
                    self._stopping.wait(FAILURE_PAUSE_SECONDS)
                self.batches_sent += 1
                sent_at = time.monotonic()
            if stopping:
                return
