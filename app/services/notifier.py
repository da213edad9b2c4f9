"""In-process wake-ups for live streams.

The database is the source of truth for output and status; this only tells
streams in *this* process that there is something new to read, so they need
not wait for their next poll. Streams attached to a worker that does not run
the execution simply poll (see :mod:`app.services.streams`).
"""

from __future__ import annotations

import threading
from collections import defaultdict

ALL = "*"  # topic of the feed of every execution's status changes


class Notifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = defaultdict(set)
        self._versions: dict[str, int] = defaultdict(int)

    def subscribe(self, topic: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiters[topic].add(event)
        return event

    def unsubscribe(self, topic: str, event: threading.Event) -> None:
        with self._lock:
            waiters = self._waiters.get(topic)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[topic]

    def notify(self, topic: str) -> None:
        with self._lock:
            self._versions[topic] += 1
            events = list(self._waiters.get(topic, ()))
        for event in events:
            event.set()

    def version(self, topic: str) -> int:
        """How many notifications ``topic`` has had in this process."""
        with self._lock:
            return self._versions.get(topic, 0)

    def forget(self, topic: str) -> None:
        """Drop the version counter of a topic nobody follows any more."""
        with self._lock:
            if topic not in self._waiters:
                self._versions.pop(topic, None)

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(events) for events in self._waiters.values())


notifier = Notifier()
