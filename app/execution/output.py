"""Execution output, persisted as it happens.

:class:`OutputBuffer` is the :class:`~app.execution.runners.base.OutputSink` the
engine hands to a runner. Lines from stdout and stderr get a sequence number in
arrival order and are written to ``execution_logs`` in small batches. Writes are
paced by a token bucket (:class:`_FlushBudget`: 10 writes a second, 2 back to
back): a line is written at once while the budget allows - so output of up to
ten lines a second goes out as it comes, jitter included - and otherwise by a
flusher thread as soon as the next write is allowed, together with everything
that arrived meanwhile; 64 pending lines are written at once. The flusher is
started the first time a line has to wait, so a run with little or no output
starts none. A watcher sees
output while the execution runs, and a crash loses at most the last batch.
Every line is stored with the execution's secrets (the trigger's credentials and
the delivery's credential values) replaced by ``[redacted]``, as in its report and
log lines: a command that prints a token it was given does not publish it to
everyone who can read the output (texts shorter than :data:`MIN_MASKED_LENGTH`
are left alone: masking every ``a`` of the output would hide nothing).
Output beyond ``max_output_bytes`` is not stored: from the first line that does
not fit on, everything is dropped (the runner may also :meth:`OutputBuffer.discard`
bytes it never split into lines); one final ``system`` line says how much was
dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from app.clock import utc_now_iso
from app.context import start_thread
from app.live.notifier import Notifier
from app.store import Database, execution_logs
from app.triggers.templates import mask_secrets

log = logging.getLogger(__name__)

BATCH_LINES = 64
FLUSHES_PER_SECOND = 10.0
FLUSH_BURST = 2.0
FLUSH_INTERVAL_SECONDS = 1 / FLUSHES_PER_SECOND
RETRY_CAP_SECONDS = 5.0
MIN_MASKED_LENGTH = 4


class _FlushBudget:
    """Token bucket for writes: ``burst`` at once, ``rate`` a second on average.

    A bucket rather than "100 ms since the last write": with output arriving
    about every 100 ms, one late write would otherwise push every later line
    back by nearly that much, and the lag would shrink only by the arrival
    jitter per line.
    """

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens, self._stamp = burst, clock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def seconds_until_allowed(self) -> float:
        self._refill(self._clock())
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate

    def spend(self) -> None:
        """One write happened (a forced one too; the bucket never goes below empty)."""
        self._refill(self._clock())
        self._tokens = max(0.0, self._tokens - 1)


class OutputBuffer:
    def __init__(
        self,
        db: Database,
        notifier: Notifier,
        execution_id: str,
        max_bytes: int,
        secrets: Sequence[str] = (),
    ) -> None:
        self._db = db
        # Masked in every line; texts under four characters are no secret worth
        # garbling every occurrence of them in the output for.
        self._secrets = [secret for secret in secrets if len(secret) >= MIN_MASKED_LENGTH]
        self._notifier = notifier
        self._execution_id = execution_id
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[execution_logs.LogRow] = []
        self._seq = 0
        self.bytes = 0
        self.dropped_bytes = 0
        self.full = False  # a line did not fit: this and everything after it is dropped
        self._closed = threading.Event()
        self._noted_truncation = False
        self._kick = threading.Event()  # lines are waiting for the flusher
        self._budget = _FlushBudget(FLUSHES_PER_SECOND, FLUSH_BURST)
        self._flusher: threading.Thread | None = None  # started when a line has to wait

    def line(self, stream: str, text: str) -> None:
        self.lines(stream, [text])

    def lines(self, stream: str, texts: list[str]) -> None:
        """Store lines of one stream in order; once one does not fit, none after it does."""
        if self._secrets:
            texts = [mask_secrets(text, self._secrets) for text in texts]
        with self._lock:
            for text in texts:
                size = len(text.encode("utf-8", errors="replace")) + 1
                if self.full or self.bytes + size > self._max_bytes:
                    self.full = True
                    self.dropped_bytes += size
                    continue
                self.bytes += size
                self._append(stream, text)
            due = len(self._pending) >= BATCH_LINES or self._budget.seconds_until_allowed() == 0
        if due:
            try:
                self.flush()
            except Exception:  # the lines are pending again; the flusher retries
                log.warning("output write failed; retrying", exc_info=True)
                self._wake_flusher()
        else:
            self._wake_flusher()

    def _wake_flusher(self) -> None:
        """Have the flusher write what is pending as soon as the budget allows."""
        with self._lock:
            if self._flusher is None and not self._closed.is_set():
                self._flusher = start_thread(self._flush_periodically)
        self._kick.set()

    def discard(self, byte_count: int) -> None:
        """Output read past the limit and thrown away: counted as dropped."""
        with self._lock:
            self.full = True
            self.dropped_bytes += byte_count

    def system(self, text: str) -> None:
        text = mask_secrets(text, self._secrets)
        with self._lock:
            self._append("system", text)

    def _append(self, stream: str, text: str) -> None:
        self._seq += 1
        self._pending.append((self._seq, utc_now_iso(), stream, text))

    def flush(self) -> None:
        """Write pending lines now (one short transaction) and wake live streams.

        If the write fails the lines stay pending, ahead of any that arrived
        meanwhile, and the error is raised.
        """
        with self._flush_lock:
            with self._lock:
                rows, self._pending = self._pending, []
                output_bytes = self.bytes
            if not rows:
                return
            try:
                execution_logs.append(self._db, self._execution_id, rows, output_bytes)
            except Exception:
                with self._lock:
                    self._pending[:0] = rows
                raise
            with self._lock:
                self._budget.spend()
            self._notifier.notify(self._execution_id)

    def _flush_periodically(self) -> None:
        failures = 0
        while not self._closed.is_set():
            self._kick.wait(FLUSH_INTERVAL_SECONDS)
            self._kick.clear()
            with self._lock:
                wait = self._budget.seconds_until_allowed()
            if failures:  # the store is failing: back off, up to the retry cap
                wait = max(wait, min(RETRY_CAP_SECONDS, FLUSH_INTERVAL_SECONDS * 2**failures))
            if wait > 0 and self._closed.wait(wait):
                return
            try:
                self.flush()
                failures = 0
            except Exception:  # still pending: retried next round; close() raises
                failures += 1
                log.warning("output write failed; retrying", exc_info=failures == 1)

    def close(self) -> None:
        """Stop the flusher, note any truncation, and write everything left.

        Raises when the last write fails; the lines stay pending, so calling
        ``close`` again retries them (the truncation notice is added once).
        """
        with self._lock:
            self._closed.set()
            flusher = self._flusher
        self._kick.set()
        if flusher is not None:
            flusher.join()
        if self.dropped_bytes and not self._noted_truncation:
            self._noted_truncation = True
            self.system(
                f"[output truncated: {self.dropped_bytes} bytes over the "
                f"{self._max_bytes}-byte limit were not stored]"
            )
        self.flush()
