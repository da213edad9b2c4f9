"""The guard program: SIGKILL the watched process groups once the worker is gone.

Run as ``python -I -S guard_process.py`` with stdin the read end of a pipe that
only the worker holds open (standard library only: it must start without the
app). The worker writes one line per change: ``+<pgid>`` when a command's
process group starts, ``-<pgid>`` when it is done with it. End of input means
the worker exited - normally, by ``kill -9`` or the OOM killer alike, since
the kernel closes a dead process's descriptors - and the guard SIGKILLs every
group still watched, then exits.

The guard waits for the hang-up only (``poll`` with no events asked for: a
write does not wake it, the end of input does at once) and reads what the
worker wrote every :data:`DRAIN_MS` milliseconds. So a command costs the
worker two small writes and no context switch to the guard; the pipe
(enlarged by the worker) holds far more than a drain interval's lines.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal

DRAIN_MS = 200


def apply(watched: set[int], line: bytes) -> None:
    """Update ``watched`` from one ``+pgid`` / ``-pgid`` line (others are ignored)."""
    text = line.strip().decode("ascii", errors="replace")
    if len(text) < 2 or not text[1:].isdigit():
        return
    pgid = int(text[1:])
    if text[0] == "+":
        watched.add(pgid)
    elif text[0] == "-":
        watched.discard(pgid)


def main() -> None:
    # A Ctrl-C or a SIGTERM meant for the server must not end the guard first.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    watched: set[int] = set()
    pending = b""
    os.set_blocking(0, False)
    hang_up = select.poll()
    hang_up.register(0, 0)  # no events: only a hang-up or an error ends the wait
    at_end = False
    while not at_end:
        hang_up.poll(DRAIN_MS)
        while True:
            try:
                chunk = os.read(0, 65536)
            except BlockingIOError:  # all read: wait again
                break
            if not chunk:
                at_end = True
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                apply(watched, line)
    for pgid in watched:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    main()
