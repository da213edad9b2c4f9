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
* On worker shutdown the stream returns promptly; clients reconnect with
  ``Last-Event-ID``.

``GET /admin/stream`` is the same machinery over every execution's status
changes (``id:`` is an opaque position to resume from).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from app.db import Database, execution_logs, executions
from app.db import execution_queue as queue
from app.db.executions import FINAL_STATUSES
from app.lifecycle import shutting_down
from app.services.notifier import ALL, notifier

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 2000
_BATCH = 500
_STATUS_FIELDS = (
    "id",
    "trigger",
    "status",
    "attempt",
    "exit_code",
    "error",
    "started_at",
    "finished_at",
)


def sse(event: str, data: dict[str, Any], event_id: str | int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def execution_stream(db: Database, execution_id: str, after_seq: int) -> Iterator[str]:
    """Replay stored lines after ``after_seq``, then follow until the execution ends."""
    subscription = notifier.subscribe(execution_id)
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        last_status: str | None = None
        last_sent = time.monotonic()
        while True:
            subscription.clear()
            row = executions.get(db, execution_id)
            if row["status"] != last_status:
                last_status = row["status"]
                yield sse("status", {key: row[key] for key in _STATUS_FIELDS})
                last_sent = time.monotonic()
            lines = execution_logs.after(db, execution_id, after_seq, _BATCH)
            for line in lines:
                after_seq = line["seq"]
                yield sse("log", line, event_id=line["seq"])
            if lines:
                last_sent = time.monotonic()
                if len(lines) == _BATCH:
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
        notifier.unsubscribe(execution_id, subscription)


def _position(event_id: str | None) -> tuple[str, str] | None:
    if not event_id or "|" not in event_id:
        return None
    changed_at, _, execution_id = event_id.partition("|")
    return changed_at, execution_id


def status_feed(db: Database, last_event_id: str | None) -> Iterator[str]:
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
        notifier.unsubscribe(ALL, subscription)
