"""Read a child's output pipes into the output sink: one loop, bounded work per round.

Contract:

* One loop waits on every pipe at once (a selector; cooperative under gevent)
  and hands lines to the sink in the order it reads them. Across two pipes
  that is arrival order only as far as the reader can see it: lines written to
  stdout and stderr within the same instant may be read in either order. One
  pipe for both streams (``stderr: merge``) keeps the exact order.
* Work per round is bounded so that a flood of output cannot starve other
  greenlets: at most :data:`READ_CHUNK` bytes per pipe are read and split
  into lines, lines go to the sink :data:`LINES_PER_SLICE` at a time, and the
  loop yields after every slice and every round (and lets the gevent hub poll
  I/O every few milliseconds of work, see :class:`_Yielder`).
* Once the sink is full (``max_output_bytes`` reached) the rest is drained
  cheaply: large reads, counted with :meth:`OutputSink.discard` and thrown
  away, never split into lines. ``on_full`` is called once at that moment.
* Lines are split at ``\\n`` (a trailing ``\\r`` is dropped), cut every
  :data:`MAX_LINE` bytes, and decoded as UTF-8 with replacement characters; a
  last line without a newline is kept.
* The loop ends when every pipe is at end of file, or when ``stop`` is set; it
  closes the pipes it read.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import time
from collections.abc import Callable
from typing import IO

from app.execution.runners.base import OutputSink

READ_CHUNK = 16 * 1024
DRAIN_CHUNK = 256 * 1024
LINES_PER_SLICE = 256
MAX_LINE = 65536
_WAIT_SECONDS = 0.1  # how often an idle loop looks at ``stop``


class LineSplitter:
    """Bytes in, complete lines out (as text)."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        *complete, self._partial = (self._partial + data).split(b"\n")
        lines: list[str] = []
        for raw in complete:
            lines.extend(_cut(raw.removesuffix(b"\r")))
        while len(self._partial) >= MAX_LINE:  # a line that long goes out in pieces
            lines.append(_text(self._partial[:MAX_LINE]))
            self._partial = self._partial[MAX_LINE:]
        return lines

    def drop_partial(self) -> int:
        """Forget an incomplete line; how many bytes it had."""
        size, self._partial = len(self._partial), b""
        return size

    def finish(self) -> list[str]:
        """The last line, if the output did not end with a newline."""
        rest, self._partial = self._partial, b""
        return _cut(rest.removesuffix(b"\r")) if rest else []


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _cut(raw: bytes) -> list[str]:
    if len(raw) <= MAX_LINE:
        return [_text(raw)]
    return [_text(raw[start : start + MAX_LINE]) for start in range(0, len(raw), MAX_LINE)]


class _Yielder:
    """Lets other greenlets (or threads) run; call it between bounded pieces of work.

    Under gevent a plain ``sleep(0)`` lets ready greenlets run but does not
    make the hub poll I/O: it runs up to 50 such callbacks before it looks,
    so a reader yielding every millisecond would still hold new requests back
    for about 50 ms. Hence every :data:`POLL_EVERY_SECONDS` of work the yield
    is a short timer sleep instead, after which the hub has polled I/O and
    run what became ready. Without gevent ``sleep(0)`` lets other threads
    take the GIL.
    """

    POLL_EVERY_SECONDS = 0.004
    TIMER_SECONDS = 0.001

    def __init__(self) -> None:
        from gevent import monkey

        self._gevent = bool(monkey.is_module_patched("time"))
        self._since = time.monotonic()

    def __call__(self) -> None:
        if self._gevent and time.monotonic() - self._since >= self.POLL_EVERY_SECONDS:
            time.sleep(self.TIMER_SECONDS)  # gevent's sleep: a timer, I/O polled first
            self._since = time.monotonic()
        else:
            time.sleep(0)


class _Pump:
    def __init__(
        self, pipes: dict[str, IO[bytes]], sink: OutputSink, on_full: Callable[[], None]
    ) -> None:
        self._sink = sink
        self._on_full = on_full
        self._full_seen = False
        self._pipes = pipes
        self._streams = {pipe.fileno(): stream for stream, pipe in pipes.items()}
        self._splitters = {fd: LineSplitter() for fd in self._streams}
        self._yield = _Yielder()

    def run(self, stop: threading.Event) -> None:
        selector = selectors.DefaultSelector()
        try:
            for fd in self._streams:
                selector.register(fd, selectors.EVENT_READ)
            open_fds = set(self._streams)
            while open_fds and not stop.is_set():
                for key, _ in selector.select(_WAIT_SECONDS):
                    fd = int(key.fd)
                    if not self._read(fd):
                        selector.unregister(fd)
                        open_fds.discard(fd)
                self._yield()
        finally:
            selector.close()
            for pipe in self._pipes.values():
                with contextlib.suppress(OSError):
                    pipe.close()

    def _read(self, fd: int) -> bool:
        """Read once from ``fd``; False at end of file."""
        full = self._check_full()
        try:
            data = os.read(fd, DRAIN_CHUNK if full else READ_CHUNK)
        except BlockingIOError:  # readiness was stale (the pipe may be non-blocking)
            return True
        except OSError:
            data = b""
        stream = self._streams[fd]
        if not data:
            self._deliver(stream, self._splitters[fd].finish())
            return False
        if full:
            self._sink.discard(len(data) + self._splitters[fd].drop_partial())
        else:
            self._deliver(stream, self._splitters[fd].feed(data))
        return True

    def _deliver(self, stream: str, lines: list[str]) -> None:
        for start in range(0, len(lines), LINES_PER_SLICE):
            if self._check_full():
                self._sink.discard(sum(len(line) + 1 for line in lines[start:]))
                return
            self._sink.lines(stream, lines[start : start + LINES_PER_SLICE])
            self._yield()

    def _check_full(self) -> bool:
        if not self._sink.full:
            return False
        if not self._full_seen:
            self._full_seen = True
            self._on_full()
        return True


def pump(
    pipes: dict[str, IO[bytes]],
    sink: OutputSink,
    stop: threading.Event,
    on_full: Callable[[], None] = lambda: None,
) -> None:
    """Read ``{stream name: pipe}`` into ``sink`` until end of file or ``stop``."""
    _Pump(pipes, sink, on_full).run(stop)
