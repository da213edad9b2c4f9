"""Wake-ups for live streams and engines: in this process, and across processes and hosts.

The database is the source of truth for output, status and queued work; this
only tells followers that there is something new to read, so they need not
wait for their next poll. A notification is a hint: a missed one only delays
(every follower also polls), it never loses anything.

Each app has one :class:`Notifier`. With a store that can carry notifications
between processes (PostgreSQL: ``LISTEN/NOTIFY``, see
:mod:`app.store.postgres.notify`) the notifier has a *backend*:
:meth:`Notifier.notify` wakes local followers and publishes the topic;
notifications from other processes arrive through :meth:`Notifier.notify_local`.
Without a backend (SQLite) streams of executions running in another worker poll.

Topics: an execution id (its lines and status), :data:`ALL` (the feed of every
status change), :data:`WORK` (work was queued: engines claim) and
:data:`CANCEL` (a cancel was requested: the owning engine applies it) and
:data:`TRIGGERS` (a trigger changed: cached compiled triggers are re-checked).
Engines and other callbacks :meth:`~Notifier.watch` a topic.

Protocol: a stream subscribes to a topic once, then repeats ``clear()`` (before
it reads the store), read, ``wait(timeout)``. A notification that lands between
``clear()`` and ``wait()`` is not lost: ``wait`` returns at once.

Each topic has one event that the next :meth:`Notifier.notify` sets and then
replaces, so one ``set()`` wakes every follower of an execution however many
there are. A topic, with its version, exists only while somebody follows it;
versions come from one process-wide counter, so a topic followed again later
never repeats a version that a cached read may still carry.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

ALL = "*"  # topic of the feed of every execution's status changes
WORK = "~work"  # executions were queued
CANCEL = "~cancel"  # a running execution was asked to stop
TRIGGERS = "~triggers"  # a trigger was created, changed or deleted


# What a process does, as far as notifications go: a backend that can address
# processes (the doorbell) carries each topic only to the roles that act on it.
ENGINE = "engine"  # runs executions and serves no HTTP (an engine process)
WEB = "web"  # serves HTTP - streams, feeds, waits - and runs no engine
BOTH = "all"  # a web worker that also runs an engine (single-process mode)


def audience(topic: str) -> tuple[str, ...]:
    """The roles of the processes that act on ``topic``.

    Engines act on queued work and cancel requests; web workers follow
    executions and the feed; every process caches triggers.
    """
    if topic in (WORK, CANCEL):
        return (ENGINE, BOTH)
    if topic == TRIGGERS:
        return (ENGINE, WEB, BOTH)
    return (WEB, BOTH)


def role_of(*, serves_http: bool, runs_engine: bool) -> str:
    if not serves_http:
        return ENGINE
    return BOTH if runs_engine else WEB


class Backend(Protocol):
    """Carries topics to the notifiers of other processes."""

    def publish(self, topic: str) -> None: ...


class _Topic:
    __slots__ = ("event", "subscribers", "version")

    def __init__(self, version: int) -> None:
        self.event = threading.Event()
        self.subscribers = 0
        self.version = version


class Subscription:
    """One stream's hold on a topic; see the module docstring for the protocol."""

    def __init__(self, topic: str, entry: _Topic) -> None:
        self.topic = topic
        self._entry = entry
        self._event = entry.event
        self.active = True

    def clear(self) -> None:
        """From now on, ``wait`` returns on the next notification only."""
        self._event = self._entry.event

    def wait(self, timeout: float) -> bool:
        """True when notified since the last ``clear``; False after ``timeout`` seconds."""
        return self._event.wait(timeout)


class Notifier:
    def __init__(self, backend: Backend | None = None) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, _Topic] = {}
        self._counter = itertools.count(1)
        self._watchers: dict[str, list[Callable[[], None]]] = {}
        self.backend = backend

    def watch(self, topic: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quick, non-blocking) on every notification of ``topic``."""
        with self._lock:
            self._watchers.setdefault(topic, []).append(callback)

    def subscribe(self, topic: str) -> Subscription:
        with self._lock:
            entry = self._topics.get(topic)
            if entry is None:
                entry = self._topics[topic] = _Topic(next(self._counter))
            entry.subscribers += 1
            return Subscription(topic, entry)

    def unsubscribe(self, subscription: Subscription) -> None:
        """End a subscription; calling it again does nothing."""
        with self._lock:
            if not subscription.active:
                return
            subscription.active = False
            entry = self._topics.get(subscription.topic)
            if entry is not None:
                entry.subscribers -= 1
                if entry.subscribers <= 0:
                    del self._topics[subscription.topic]

    def notify(self, topic: str) -> None:
        """Wake this process's followers of ``topic`` and those of every other process."""
        self.notify_local(topic)
        if self.backend is not None:
            try:
                self.backend.publish(topic)
            except Exception:  # a hint only: other processes still poll
                log.warning("could not publish a notification", exc_info=True)

    def notify_local(self, topic: str) -> None:
        """Wake this process's followers and watchers of ``topic``."""
        with self._lock:
            watchers = list(self._watchers.get(topic, ()))
            entry = self._topics.get(topic)
            event = None
            if entry is not None:
                entry.version = next(self._counter)
                event, entry.event = entry.event, threading.Event()
        if event is not None:
            event.set()
        for callback in watchers:
            callback()

    def version(self, topic: str) -> int:
        """Changes with every notification of ``topic``; never repeats within a process."""
        with self._lock:
            entry = self._topics.get(topic)
            return entry.version if entry is not None else next(self._counter)

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(entry.subscribers for entry in self._topics.values())


notifier = Notifier()
