"""Notifications between processes and hosts over PostgreSQL ``LISTEN/NOTIFY``.

:class:`PgNotifyBackend` is the notifier backend of the PostgreSQL store (see
:mod:`app.live.notifier`):

* **Publishing** is coalesced: :meth:`~PgNotifyBackend.publish` only records
  the topic; a :class:`~app.live.publisher.TopicPublisher` sends everything
  gathered meanwhile in one statement on a pooled connection, at most one per
  few milliseconds while busy. A burst of output flushes costs one round trip,
  and no caller ever waits on the network.
* **Listening** uses one dedicated autocommit connection per process, woken at
  least every second to notice a stop; a lost connection is re-opened with
  backoff. Notifications are hints: while the listener is down everything still
  works by polling, only later.
* One channel per role (``hookrunner_engine``, ``hookrunner_web``,
  ``hookrunner_all``): a process listens on its role's channel only, and a
  topic is sent on the channels of the roles that act on it (the notifier's
  ``audience``), so an engine is not woken by another engine's output lines
  and a web worker not by queued work. Without an audience (a CLI command) a
  topic goes to every channel.
* Each payload starts with this process's origin id, so a process ignores its
  own notifications (it already woke its followers locally).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from app.context import start_thread
from app.live.publisher import TopicPublisher

log = logging.getLogger(__name__)

ROLES = ("engine", "web", "all")  # as in app.live.notifier (ENGINE, WEB, BOTH)
_MAX_PAYLOAD = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes and more
_PUBLISH = (
    "SELECT pg_notify(channel, payload)"
    " FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS sent (channel, payload)"
)


def channel(role: str) -> str:
    """The channel the processes of ``role`` listen on (an unknown role: ``all``)."""
    return f"hookrunner_{role if role in ROLES else 'all'}"


class PgNotifyBackend:
    def __init__(self, url: str, store: Any) -> None:
        self.url = url
        self.store = store  # the PostgresDatabase whose pool publishes
        self.origin = uuid.uuid4().hex[:12]
        self.deliver: Callable[[str], None] = lambda _topic: None
        self._publisher = TopicPublisher(self._send, name="hookrunner-publish")
        self._stopped = threading.Event()
        self._listening = threading.Event()  # the listener is connected and LISTENing
        self.channel = channel("all")  # where this process listens
        self.audience: Callable[[str], tuple[str, ...]] | None = None  # None: every role
        self._threads: list[threading.Thread] = []

    def start(
        self,
        deliver: Callable[[str], None],
        *,
        listen: bool = True,
        role: str = "all",
        audience: Callable[[str], tuple[str, ...]] | None = None,
    ) -> None:
        """Deliver other processes' topics to ``deliver``; start publishing.

        With ``listen=False`` (a CLI command) no listener connection is opened:
        the process only publishes. ``role`` names what this process acts on
        (its channel); ``audience(topic)`` the roles a topic is sent to
        (default: all).
        """
        self.deliver = deliver
        self.channel = channel(role)
        self.audience = audience
        self._publisher.start()
        if listen:
            self._threads = [start_thread(self._listen_loop, fresh=True, name="hookrunner-listen")]

    def wait_listening(self, timeout: float) -> bool:
        """True once the listener is subscribed (tests, start-up checks)."""
        return self._listening.wait(timeout)

    def publish(self, topic: str) -> None:
        self._publisher.publish(topic)

    def stop(self) -> None:
        """Publish what is still pending, then stop listening (idempotent)."""
        self._stopped.set()
        self._publisher.stop()
        for thread in self._threads:
            thread.join(3)

    # --- publishing -------------------------------------------------------------------

    def _send(self, topics: list[str]) -> None:
        channels: list[str] = []
        payloads: list[str] = []
        for topic in topics:
            payload = f"{self.origin}|{topic}"[:_MAX_PAYLOAD]
            roles = ROLES if self.audience is None else self.audience(topic)
            for name in {channel(role) for role in roles}:
                channels.append(name)
                payloads.append(payload)
        with self.store.read() as conn:  # a failure is logged by the publisher
            conn.execute(_PUBLISH, (channels, payloads))

    # --- listening --------------------------------------------------------------------

    def _listen_loop(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    self._listening.set()
                    backoff = 0.5
                    while not self._stopped.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._receive(note.payload)
                            if self._stopped.is_set():
                                break
            except Exception:
                self._listening.clear()
                if self._stopped.is_set():
                    break
                log.warning("notification listener lost its connection; reconnecting")
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        self._listening.clear()

    def _receive(self, payload: str) -> None:
        origin, _, topic = payload.partition("|")
        if origin == self.origin or not topic:
            return
        try:
            self.deliver(topic)
        except Exception:
            log.exception("notification handler failed")
