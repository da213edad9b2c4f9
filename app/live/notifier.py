"""In-process wake-ups for live streams.

The database is the source of truth for output and status; this only tells
streams in *this* process that there is something new to read, so they need
not wait for their next poll. Streams attached to a worker that does not run
the execution simply poll (see :mod:`app.live.streams`).

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
import threading

ALL = "*"  # topic of the feed of every execution's status changes


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
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, _Topic] = {}
        self._counter = itertools.count(1)

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
        with self._lock:
            entry = self._topics.get(topic)
            if entry is None:
                return
            entry.version = next(self._counter)
            event, entry.event = entry.event, threading.Event()
        event.set()

    def version(self, topic: str) -> int:
        """Changes with every notification of ``topic``; never repeats within a process."""
        with self._lock:
            entry = self._topics.get(topic)
            return entry.version if entry is not None else next(self._counter)

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(entry.subscribers for entry in self._topics.values())


notifier = Notifier()
