"""Commands never outlive their worker process: the worker's process-group guard.

Each worker process that runs commands starts one small guard process (see
:mod:`app.execution.runners.guard_process`) with the first command, and keeps
the write end of a pipe to it. :func:`watch` registers a command's process
group as soon as it is spawned, :func:`release` once the run is over. When the
worker dies in any way the pipe closes and the guard SIGKILLs every group
still registered - within milliseconds, long before a replacement worker has
booted and the reaper records the execution ``interrupted`` and queues its
retry, so two attempts of one execution never run at once.

Not covered: processes that left the group (``setsid``, daemons) and processes
a command left behind after it finished. If the guard itself dies, the next
call starts a new one and registers every group still running again.

The pipe is close-on-exec, so commands never hold it. Writes are a few bytes
and never block in practice: the pipe is enlarged to :data:`PIPE_BYTES` and the
guard empties it five times a second (without being woken by each write, see
:mod:`app.execution.runners.guard_process`); they run under a lock that is
never held across a yield.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
from pathlib import Path

_PROGRAM = str(Path(__file__).with_name("guard_process.py"))
PIPE_BYTES = 1 << 20  # Linux's default limit for unprivileged processes


class _Guard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None
        self._owner_pid = 0  # the process this guard serves (a forked copy starts afresh)
        self._watched: set[int] = set()

    def watch(self, pgid: int) -> None:
        with self._lock:
            self._ensure_started()
            self._watched.add(pgid)
            self._send(f"+{pgid}\n")

    def release(self, pgid: int) -> None:
        with self._lock:
            if self._owner_pid != os.getpid() or self._fd is None:
                return  # nothing this process asked the guard to watch
            self._watched.discard(pgid)
            with contextlib.suppress(OSError):  # no guard to be had: nothing to release
                self._send(f"-{pgid}\n")

    @property
    def pid(self) -> int | None:
        """The guard process of this worker, once started."""
        return self._pid if self._owner_pid == os.getpid() else None

    def _ensure_started(self) -> None:
        if self._owner_pid != os.getpid():  # first use, or a forked copy of another worker
            self._fd, self._pid, self._watched = None, None, set()
            self._start()

    def _send(self, line: str) -> None:
        try:
            if self._fd is None:
                raise BrokenPipeError
            os.write(self._fd, line.encode())
        except OSError:  # the guard died: a new one is told about every watched group
            self._start()

    def _start(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        read_end, write_end = os.pipe()  # both close-on-exec: commands never hold them
        if hasattr(fcntl, "F_SETPIPE_SZ"):
            with contextlib.suppress(OSError):  # a lower system limit: the default size
                fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        try:
            self._pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-I", "-S", _PROGRAM],
                {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)],
                setsid=True,  # a signal to the server's process group does not reach it
            )
        except OSError:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._fd, self._owner_pid = write_end, os.getpid()
        if self._watched:
            os.write(write_end, "".join(f"+{pgid}\n" for pgid in self._watched).encode())


_GUARD = _Guard()


def watch(pgid: int) -> None:
    """Kill process group ``pgid`` should this process die before :func:`release`."""
    _GUARD.watch(pgid)


def start() -> None:
    """Start this process's guard now rather than with the first command.

    Engine processes call it at start-up: a kill that lands while the first
    command is being spawned then still finds a guard to close the pipe on.
    """
    with _GUARD._lock:
        _GUARD._ensure_started()


def release(pgid: int) -> None:
    """Stop guarding ``pgid`` (its command's run is over)."""
    _GUARD.release(pgid)


def guard_pid() -> int | None:
    return _GUARD.pid
