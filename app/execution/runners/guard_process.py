"""The guard program: SIGKILL the watched process groups once the worker is gone.

Run as ``python -I -S guard_process.py`` with stdin the read end of a pipe that
only the worker holds open (standard library only: it must start without the
app). The worker writes one line per change: ``+<pgid>`` when a command's
process group starts, ``-<pgid>`` when it is done with it. End of input means
the worker exited - normally, by ``kill -9`` or the OOM killer alike, since
the kernel closes a dead process's descriptors - and the guard SIGKILLs every
group still watched, then exits.
"""

from __future__ import annotations

import contextlib
import os
import signal


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
    while chunk := os.read(0, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            apply(watched, line)
    for pgid in watched:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    main()
