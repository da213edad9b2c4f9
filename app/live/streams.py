"""Server-Sent Event streams of executions, with the database as the source of truth.

Protocol of ``GET /admin/executions/<id>/stream``:

* The first bytes go out at once (a ``retry:`` hint), so proxies start streaming.
* Events: ``status`` (data: the execution's status fields), ``log`` (``id:`` is
  the line's ``seq``; data: ``{"seq", "ts", "stream", "line"}``) and finally
  ``end`` once the execution has a final status and every stored line was sent.
* ``Last-Event-ID`` (or ``?after=``) resumes after that ``seq``: nothing is
  repeated or skipped, because lines are read from ``execution_logs`` by seq.
* Between reads the stream waits for an in-process notification (when the
  execution runs in this worker) or at most :data:`POLL_SECONDS` (when it runs
  elsewhere), and sends a ``: keepalive`` comment every 15 s of silence.
* No database connection is held while waiting: each read borrows one briefly.
  Subscribers of the same execution at the same position share one read
  (:class:`_SharedReads`), already encoded: a notification is read from the
  store and turned into SSE text once, not once per subscriber, and each
  subscriber writes what it read as one chunk. One notification wakes them all
  (:mod:`app.live.notifier`), which keeps a thousand followers cheap.
* On worker shutdown the stream returns promptly; clients reconnect with
  ``Last-Event-ID``.

``GET /admin/stream`` is the same machinery over every execution's status
changes (``id:`` is an opaque position to resume from).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.lifecycle import shutting_down
from app.live.notifier import ALL, Notifier
from app.store import Database, execution_logs
from app.store import execution_queue as queue
from app.store.executions import FINAL_STATUSES

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 2000
_BATCH = 500
_SHARE_SECONDS = 0.25  # how long a shared read may serve others without a new notification


@dataclass(frozen=True)
class _Read:
    """What one read of the store found after a position, with the SSE text of its lines."""

    status: dict[str, Any] | None
    count: int
    last_seq: int
    text: str  # the ``log`` events of the lines, ready to send


class _SharedReads:
    """Reads of (status, lines after seq) shared by subscribers at the same position.

    A cached read serves others while no notification arrived since it was
    made and it is younger than :data:`_SHARE_SECONDS` (so streams of
    executions running in other processes still see new rows when they poll).
    """

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._entries: dict[tuple[str, int], tuple[int, float, _Read]] = {}

    def read(self, db: Database, execution_id: str, after_seq: int) -> _Read:
        version, now = self._notifier.version(execution_id), time.monotonic()
        key = (execution_id, after_seq)
        hit = self._entries.get(key)
        if hit is not None and hit[0] == version and now - hit[1] < _SHARE_SECONDS:
            return hit[2]
        status = queue.status_row(db, execution_id)
        lines = execution_logs.after(db, execution_id, after_seq, _BATCH)
        found = _Read(
            status=status,
            count=len(lines),
            last_seq=lines[-1]["seq"] if lines else after_seq,
            text="".join(sse("log", line, event_id=line["seq"]) for line in lines),
        )
        if len(self._entries) > 4096:
            self._entries = {k: v for k, v in self._entries.items() if now - v[1] < _SHARE_SECONDS}
        self._entries[key] = (version, now, found)
        return found


def stream_url(execution_id: str) -> str:
    """Where an execution's live output is followed (``GET``, SSE)."""
    return f"/admin/executions/{execution_id}/stream"


def sse(event: str, data: dict[str, Any], event_id: str | int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class LiveStreams:
    """The SSE streams of one app: its store, its notifier, and reads they share."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        self.db = db
        self.notifier = notifier
        self._shared = _SharedReads(notifier)

    def execution(self, execution_id: str, after_seq: int) -> Iterator[str]:
        """See :func:`execution_stream`."""
        return execution_stream(self.db, self.notifier, self._shared, execution_id, after_seq)

    def status_feed(self, last_event_id: str | None) -> Iterator[str]:
        """See :func:`status_feed`."""
        return status_feed(self.db, self.notifier, last_event_id)


def execution_stream(
    db: Database, notifier: Notifier, shared: _SharedReads, execution_id: str, after_seq: int
) -> Iterator[str]:
    """Replay stored lines after ``after_seq``, then follow until the execution ends."""
    subscription = notifier.subscribe(execution_id)
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        last_status: str | None = None
        last_sent = time.monotonic()
        while True:
            subscription.clear()
            found = shared.read(db, execution_id, after_seq)
            row = found.status
            if row is None:
                return
            if row["status"] != last_status:
                last_status = row["status"]
                yield sse("status", row)
                last_sent = time.monotonic()
            if found.count:
                after_seq = found.last_seq
                yield found.text
                last_sent = time.monotonic()
                if found.count == _BATCH:
                    continue
            if last_status in FINAL_STATUSES:
                yield sse("end", {"id": execution_id, "status": last_status, "last_seq": after_seq})
                return
            if shutting_down.is_set():
                return
            subscription.wait(POLL_SECONDS)
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
    finally:
        notifier.unsubscribe(subscription)


def _position(event_id: str | None) -> tuple[str, str] | None:
    if not event_id or "|" not in event_id:
        return None
    changed_at, _, execution_id = event_id.partition("|")
    return changed_at, execution_id


def status_feed(db: Database, notifier: Notifier, last_event_id: str | None) -> Iterator[str]:
    """Every execution's status changes from now (or after ``last_event_id``)."""
    # Where "now" is, fixed before the first byte goes out.
    position = _position(last_event_id) or queue.latest_status_change(db)
    subscription = notifier.subscribe(ALL)
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        last_sent = time.monotonic()
        while not shutting_down.is_set():
            subscription.clear()
            changes = queue.status_changes(db, position)
            for change in changes:
                position = (change["status_changed_at"], change["id"])
                yield sse("status", change, event_id=f"{position[0]}|{position[1]}")
            if changes:
                last_sent = time.monotonic()
                continue
            subscription.wait(POLL_SECONDS)
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
    finally:
        notifier.unsubscribe(subscription)
