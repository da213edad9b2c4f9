"""Start a command's process without a shell - quickly, also under gevent.

gevent's patched ``subprocess`` forks the whole worker in Python (about 8 ms for
a typical worker), which would cap executions per second far below a peer
written in Go. ``os.posix_spawn`` (a vfork-style clone in glibc) starts the
same child in a fraction of that. Under gevent its exit is caught by a libev
child watcher started before the hub runs again - so nobody else can reap the
status first - and its pipes are read cooperatively. The spawn itself is the
unpatched ``os.posix_spawn``: gevent's wrapper would add a second watcher per
child and keep every exit status in a table it scans in full on each exit for
a minute (at hundreds of commands a second, most of the engine's time).

``posix_spawn`` cannot change directory before Python 3.13, so an action with a
``cwd`` uses ``subprocess.Popen`` instead. Either way the child leads a new
session (its own process group), and only the descriptors it is given are open
in it (everything else Python opens is close-on-exec).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any


@dataclass
class Child:
    """A started command: its pipes, and an event set the moment it exits.

    Under gevent the event is set by libev's child watcher - no greenlet waits
    per command; otherwise a waiting thread sets it.
    """

    pid: int
    stdin: IO[bytes] | None
    stdout: IO[bytes]
    stderr: IO[bytes] | None  # None when stderr goes to the stdout pipe
    exited: threading.Event
    _exit_code: Callable[[], int]

    def wait(self) -> int:
        """Block (cooperatively under gevent) until exit; the exit code, -N for signal N."""
        self.exited.wait()
        return self._exit_code()

    def exit_code(self) -> int:
        """The exit code; only once :attr:`exited` is set."""
        return self._exit_code()


def _gevent_active() -> bool:
    from gevent import monkey

    return bool(monkey.is_module_patched("os"))


def _writer(fd: int) -> IO[bytes]:
    """The command's stdin: written cooperatively under gevent."""
    if _gevent_active():
        from gevent.fileobject import FileObjectPosix

        return FileObjectPosix(fd, "wb")  # type: ignore[no-any-return]
    return os.fdopen(fd, "wb")


def _reader(fd: int) -> IO[bytes]:
    """An output pipe: a plain unbuffered file, read with ``os.read`` once a selector
    says it is ready (:mod:`app.execution.runners.pipes`), so it needs no wrapper."""
    return os.fdopen(fd, "rb", buffering=0)


def _prepare_child_watching() -> None:
    """Make sure libev handles SIGCHLD (call before spawning).

    Anyone resetting SIGCHLD to its default - Gunicorn does in each worker -
    uninstalls libev's handler; gevent's own subprocess re-installs it before
    every spawn, and so must we, or a child's exit would go unnoticed.
    """
    if _gevent_active():
        from gevent import get_hub

        get_hub().loop.install_sigchld()


def _posix_spawn() -> Callable[..., int]:
    """``os.posix_spawn`` as the standard library has it (see the module docstring)."""
    from gevent import monkey

    original: Callable[..., int] = monkey.get_original("os", "posix_spawn")
    return original


def _exit_watch(pid: int) -> tuple[threading.Event, Callable[[], int]]:
    """An event set when ``pid`` exits, and its exit code then; set up before anything yields."""
    exited = threading.Event()
    if not _gevent_active():
        status: list[int] = []

        def reap() -> None:
            status.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            exited.set()

        threading.Thread(target=reap, daemon=True, name=f"hookrunner-wait-{pid}").start()
        return exited, lambda: status[0]
    from gevent import get_hub

    watcher: Any = get_hub().loop.child(pid, False)

    def on_exit() -> None:
        watcher.stop()
        exited.set()

    watcher.start(on_exit)
    return exited, lambda: os.waitstatus_to_exitcode(watcher.rstatus)


def _executable(program: str, env: dict[str, str]) -> str:
    if "/" in program:
        return program
    found = shutil.which(program, path=env.get("PATH"))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", program)
    return found


def _popen(
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    with_stdin: bool,
    merge_stderr: bool,
    on_spawned: Callable[[int], None],
) -> Child:
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    on_spawned(process.pid)
    assert process.stdout is not None
    exited = threading.Event()

    def reap() -> None:
        process.wait()
        exited.set()

    threading.Thread(target=reap, daemon=True, name=f"hookrunner-wait-{process.pid}").start()
    return Child(
        process.pid,
        process.stdin,
        process.stdout,
        process.stderr,
        exited,
        lambda: process.returncode,
    )


def start(
    argv: list[str],
    env: dict[str, str],
    cwd: str | None,
    with_stdin: bool,
    merge_stderr: bool = False,
    on_spawned: Callable[[int], None] = lambda _pid: None,
) -> Child:
    """Start ``argv`` (no shell) in a new session; raises OSError when it cannot start.

    With ``merge_stderr`` the child's stderr is its stdout pipe (one pipe: the
    exact order of both) and :attr:`Child.stderr` is None. ``on_spawned(pid)``
    runs the moment the process exists, before anything that could yield to
    another greenlet (the command guard registers the group there, so a kill
    of this process during the rest of the set-up still leaves no command).
    """
    if cwd is not None:
        return _popen(argv, env, cwd, with_stdin, merge_stderr, on_spawned)
    path = _executable(argv[0], env)
    out_r, out_w = os.pipe()
    err_r, err_w = (-1, -1) if merge_stderr else os.pipe()
    in_r, in_w = os.pipe() if with_stdin else (-1, -1)
    stdin_action = (
        (os.POSIX_SPAWN_DUP2, in_r, 0)
        if with_stdin
        else (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
    )
    stderr_target = out_w if merge_stderr else err_w
    actions = [
        stdin_action,
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, stderr_target, 2),
    ]
    _prepare_child_watching()
    try:
        pid = _posix_spawn()(path, argv, env, file_actions=actions, setsid=True)
        on_spawned(pid)
        exited, exit_code = _exit_watch(pid)
    except BaseException:
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, in_r):
            if fd >= 0:
                os.close(fd)
    stdin = _writer(in_w) if with_stdin else None
    stderr = None if merge_stderr else _reader(err_r)
    return Child(pid, stdin, _reader(out_r), stderr, exited, exit_code)
