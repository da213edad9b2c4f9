"""Execution output, persisted as it happens.

:class:`OutputBuffer` is the :class:`~app.services.runners.base.OutputSink` the
engine hands to a runner. Lines from stdout and stderr get a sequence number in
arrival order and are written to ``execution_logs`` in small batches: at once
when the last write is 100 ms old (so sparse output is not delayed), otherwise
by a flusher thread when that 100 ms is up, and whenever 64 lines are pending.
A watcher sees output while the execution runs, and a crash loses at most the
last batch. Output beyond ``max_output_bytes`` is not stored; one final
``system`` line says how much was dropped.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time

from app.clock import utc_now_iso
from app.db import Database, execution_logs
from app.services.notifier import notifier

log = logging.getLogger(__name__)

BATCH_LINES = 64
FLUSH_INTERVAL_SECONDS = 0.1


class OutputBuffer:
    def __init__(self, db: Database, execution_id: str, max_bytes: int) -> None:
        self._db = db
        self._execution_id = execution_id
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[execution_logs.LogRow] = []
        self._seq = 0
        self.bytes = 0
        self.dropped_bytes = 0
        self._closed = threading.Event()
        self._kick = threading.Event()  # lines are waiting for the flusher
        self._last_flush = time.monotonic()
        self._flusher = threading.Thread(
            target=contextvars.copy_context().run, args=(self._flush_periodically,), daemon=True
        )
        self._flusher.start()

    def line(self, stream: str, text: str) -> None:
        size = len(text.encode("utf-8", errors="replace")) + 1
        with self._lock:
            if self.bytes + size > self._max_bytes:
                self.dropped_bytes += size
                return
            self.bytes += size
            self._append(stream, text)
            due = len(self._pending) >= BATCH_LINES
        if due or time.monotonic() - self._last_flush >= FLUSH_INTERVAL_SECONDS:
            self.flush()
        else:
            self._kick.set()

    def system(self, text: str) -> None:
        with self._lock:
            self._append("system", text)

    def _append(self, stream: str, text: str) -> None:
        self._seq += 1
        self._pending.append((self._seq, utc_now_iso(), stream, text))

    def flush(self) -> None:
        """Write pending lines now (one short transaction) and wake live streams."""
        with self._flush_lock:
            with self._lock:
                rows, self._pending = self._pending, []
                output_bytes = self.bytes
            if rows:
                self._last_flush = time.monotonic()
                execution_logs.append(self._db, self._execution_id, rows, output_bytes)
                notifier.notify(self._execution_id)

    def _flush_periodically(self) -> None:
        while not self._closed.is_set():
            self._kick.wait(FLUSH_INTERVAL_SECONDS)
            self._kick.clear()
            wait = self._last_flush + FLUSH_INTERVAL_SECONDS - time.monotonic()
            if wait > 0 and self._closed.wait(wait):
                return
            try:
                self.flush()
            except Exception:  # retried next round; close() raises if it still fails
                log.debug("output flush failed", exc_info=True)

    def close(self) -> None:
        """Stop the flusher, note any truncation, and write everything left."""
        self._closed.set()
        self._kick.set()
        self._flusher.join()
        if self.dropped_bytes:
            self.system(
                f"[output truncated: {self.dropped_bytes} bytes over the "
                f"{self._max_bytes}-byte limit were not stored]"
            )
        self.flush()
